"""app.turn: one large picture decoded at a time by the whole server, whatever its workers and threads."""
import os
import signal
import subprocess
import sys
import threading

from PIL import Image

from app import ROOT, images, isolated
from app.images import LARGE_PIXELS
from app.turn import PATH_VARIABLE, Turn
from tests.conftest import encode

# Another worker of the same server: holds the turn until its stdin closes (or it is killed).
HOLDER = """
import runpy, sys
turn = runpy.run_path("app/turn.py")["Turn"](sys.argv[1])
turn.acquire()
print("held", flush=True)
sys.stdin.read()
turn.release()
"""


def holder(path) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], cwd=ROOT, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert process.stdout.readline() == "held\n"
    return process


def taken_in_thread(turn: Turn) -> tuple[threading.Thread, threading.Event]:
    taken = threading.Event()

    def take():
        with turn:
            taken.set()

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    return thread, taken


def test_another_process_waits_for_the_turn(tmp_path):
    other = holder(tmp_path / "turn.lock")
    thread, taken = taken_in_thread(Turn(str(tmp_path / "turn.lock")))
    assert not taken.wait(1.0)  # the other worker holds it
    other.stdin.close()
    assert other.wait(10) == 0
    assert taken.wait(10)
    thread.join()


def test_a_worker_killed_in_its_turn_blocks_no_other(tmp_path):
    other = holder(tmp_path / "turn.lock")
    thread, taken = taken_in_thread(Turn(str(tmp_path / "turn.lock")))
    assert not taken.wait(0.5)
    other.send_signal(signal.SIGKILL)  # the kernel lets go of a dead process's lock
    other.wait(10)
    other.stdin.close()
    assert taken.wait(10)
    thread.join()


def test_threads_of_one_process_take_turns_too(tmp_path):
    turn = Turn(str(tmp_path / "turn.lock"))
    with turn:
        thread, taken = taken_in_thread(turn)
        assert not taken.wait(0.5)
    assert taken.wait(10)
    thread.join()


def test_without_a_file_the_turn_is_the_process_own(tmp_path):
    turn = Turn(None)
    with turn:
        thread, taken = taken_in_thread(turn)
        assert not taken.wait(0.5)
    assert taken.wait(10)
    thread.join()


def test_a_file_that_cannot_be_opened_leaves_the_worker_its_own_turn(tmp_path, caplog):
    turn = Turn(str(tmp_path / "missing" / "turn.lock"))  # in a folder that is not there: no 500, a warning
    with turn:
        thread, taken = taken_in_thread(turn)
        assert not taken.wait(0.5)
    assert taken.wait(10)
    thread.join()
    assert "in this worker only" in caplog.text


def test_a_large_picture_waits_while_another_worker_decodes_one(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "one_large_at_a_time", Turn(str(tmp_path / "turn.lock")))
    side = int(LARGE_PIXELS ** 0.5) + 10
    large, small = (encode(Image.new("RGB", size, "white"), "PNG") for size in ((side, side), (64, 64)))
    other = holder(tmp_path / "turn.lock")
    done = threading.Event()
    waiting = threading.Thread(target=lambda: (isolated.decode_image(large, 25_000_000), done.set()), daemon=True)
    waiting.start()
    assert isolated.decode_image(small, 25_000_000).size == (64, 64)  # a small one does not wait
    assert not done.wait(1.0)
    other.stdin.close()
    other.wait(10)
    assert done.wait(10)
    waiting.join()


def test_each_server_names_its_own_file_for_its_workers():
    # gunicorn.conf.py runs in the master; the workers it forks inherit the variable.
    show = ("import os, runpy; conf = runpy.run_path('gunicorn.conf.py'); "
            f"print(os.environ[{PATH_VARIABLE!r}]); conf['on_exit'](None)")
    environ = {k: v for k, v in os.environ.items() if k != PATH_VARIABLE}
    paths = [subprocess.run([sys.executable, "-c", show], cwd=ROOT, env=environ, capture_output=True, text=True,
                            check=True).stdout.strip() for _ in range(2)]
    assert paths[0] != paths[1] and all(path.endswith(".lock") for path in paths)
