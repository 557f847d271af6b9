"""app.turn: one large picture decoded at a time by the whole server, whatever its workers and threads."""
import os
import signal
import subprocess
import sys
import threading

import pytest
from PIL import Image

from app import ROOT, create_app, images, isolated
from app.images import LARGE_PIXELS
from app.turn import PATH_VARIABLE, Busy, Turn
from tests.conftest import encode
from tests.test_isolated import no_children_left

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


def test_a_file_that_cannot_be_opened_leaves_the_worker_its_own_turn_until_it_can(tmp_path, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    turn = Turn(str(blocker / "turn.lock"))  # under a file, where no folder can be made: no 500, a warning
    with turn:
        thread, taken = taken_in_thread(turn)
        assert not taken.wait(0.5)
    assert taken.wait(10)
    thread.join()
    assert "in this worker only" in caplog.text
    blocker.unlink()  # the obstacle gone (a folder removed by a /tmp cleaner is made again too)
    other = holder(blocker / "turn.lock")
    try:
        assert turn.acquire(0.5) is False  # tried again, and now it waits for the other worker
    finally:
        other.stdin.close()
        other.wait(10)


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
    # gunicorn.conf.py runs in the master, whose when_ready hook names the file once the port is bound (a
    # server stopped before that makes no folder: test_server.py); the workers it forks inherit the
    # variable. The file is in a folder only this user can write, which the master removes as it exits.
    show = ("import os, runpy; conf = runpy.run_path('gunicorn.conf.py'); "
            f"print({PATH_VARIABLE!r} in os.environ); conf['when_ready'](None); "
            f"path = os.environ[{PATH_VARIABLE!r}]; print(path); print(oct(os.stat(os.path.dirname(path)).st_mode & 0o777)); "
            "conf['on_exit'](None); print(os.path.exists(os.path.dirname(path)))")
    environ = {k: v for k, v in os.environ.items() if k != PATH_VARIABLE}
    runs = [subprocess.run([sys.executable, "-c", show], cwd=ROOT, env=environ, capture_output=True, text=True,
                           check=True).stdout.split() for _ in range(2)]
    assert runs[0][1] != runs[1][1]
    assert all(before == "False" and mode == "0o700" and gone == "False" for before, _, mode, gone in runs)


def test_the_wait_is_bounded(tmp_path):
    other = holder(tmp_path / "turn.lock")
    try:
        turn = Turn(str(tmp_path / "turn.lock"), timeout=0.3)
        assert turn.acquire(0.3) is False
        with pytest.raises(Busy):
            with turn:
                pass
        assert turn.acquire(0) is False  # and the thread lock was given back each time
    finally:
        other.stdin.close()
        other.wait(10)
    assert turn.acquire(5) is True
    turn.release()


@pytest.mark.parametrize("rate_limit", ["", "50/minute"], ids=["unlimited", "rate-limited"])
def test_a_large_picture_that_waits_too_long_is_a_503_and_its_child_ends(tmp_path, monkeypatch, rate_limit):
    # Flask-Limiter raises any Retry-After to its window's reset (60 s here): the 503's own is put back.
    monkeypatch.setenv("RATE_LIMIT", rate_limit)
    client = create_app({"TESTING": True}).test_client()
    monkeypatch.setattr(images, "one_large_at_a_time", Turn(str(tmp_path / "turn.lock"), timeout=0.5))
    side = int(LARGE_PIXELS ** 0.5) + 10
    large = encode(Image.new("RGB", (side, side), "white"), "PNG")
    other = holder(tmp_path / "turn.lock")
    try:
        response = client.post("/predict", data=large, content_type="image/png")
    finally:
        other.stdin.close()
        other.wait(10)
    assert response.status_code == 503 and "busy" in response.get_json()["error"]
    assert response.headers["Retry-After"] == "1"
    assert no_children_left()
    assert client.post("/predict", data=large, content_type="image/png").status_code == 200


def test_a_lock_file_removed_while_serving_is_taken_anew(tmp_path):
    # A worker that opened the file before it was removed must not lock the removed file alone
    # while a worker started since (a restart) locks the new one.
    path = tmp_path / "turn.lock"
    early = Turn(str(path))
    early.acquire()
    early.release()
    path.unlink()
    later = holder(path)  # makes the file again, and holds it
    try:
        assert early.acquire(0.5) is False
    finally:
        later.stdin.close()
        later.wait(10)
    assert early.acquire(5) is True
    early.release()


# A worker whose two threads take the turn again and again, for as long as its stdin stays open.
GREEDY = """
import runpy, sys, threading, time
turn = runpy.run_path("app/turn.py")["Turn"](sys.argv[1])
def again():
    while not sys.stdin.closed:
        with turn:
            time.sleep(0.2)
threads = [threading.Thread(target=again, daemon=True) for _ in range(2)]
for thread in threads:
    thread.start()
print("going", flush=True)
sys.stdin.read()
"""


def test_a_worker_with_a_queue_of_its_own_lets_the_other_take_a_turn(tmp_path):
    greedy = subprocess.Popen([sys.executable, "-c", GREEDY, str(tmp_path / "turn.lock")], cwd=ROOT, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert greedy.stdout.readline() == "going\n"
        turn = Turn(str(tmp_path / "turn.lock"))
        for _ in range(3):
            assert turn.acquire(2.0) is True  # within a turn or two of the other's, not after its queue ends
            turn.release()
    finally:
        greedy.stdin.close()
        greedy.wait(10)
