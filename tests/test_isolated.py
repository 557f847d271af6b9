"""app.isolated: each upload decoded in a child process, so a decoder's crash, memory or time costs
the request a 4xx and never the worker."""
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

from app import ROOT, images, isolated
from app.images import LARGE_PIXELS, ImageError
from tests.conftest import FIXTURES, encode

LIMIT = 25_000_000


def refusal(data: bytes) -> tuple[int, str]:
    with pytest.raises(ImageError) as caught:
        isolated.decode_image(data, LIMIT)
    return caught.value.status, caught.value.message


def no_children_left() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_the_child_reads_what_the_worker_would():
    exif = Image.Exif()
    exif[0x0112] = 6  # turned as a phone held upright
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 400, 3), np.uint8))
    for data in (encode(photo, "JPEG", exif=exif), encode(photo.convert("RGBA"), "PNG"),
                 (FIXTURES / "heic" / "11-orientation6.heic").read_bytes()):
        here, there = images.decode_image(data, LIMIT), isolated.decode_image(data, LIMIT)
        assert there.mode == "RGB" and there.size == here.size
        assert np.array_equal(np.asarray(there), np.asarray(here))
        assert there.info["original_size"] == here.info["original_size"]
    assert no_children_left()


def test_the_child_holds_none_of_the_workers_descriptors(monkeypatch):
    listening = socket.create_server(("127.0.0.1", 0))  # as gunicorn's, and its clients'
    worker_fd = str(listening.fileno())

    def descriptors(*args, **kwargs):
        raise ImageError(400, " ".join(sorted(os.listdir("/proc/self/fd"), key=int)))

    monkeypatch.setattr(images, "decode_image", descriptors)
    try:
        held = refusal(b"any bytes")[1].split()
    finally:
        listening.close()
    # stdin, stdout, stderr, the two pipes to the worker, and the one listdir opened
    assert len(held) == 6 and worker_fd not in held


def test_refusals_keep_their_status_and_message():
    assert refusal(b"") == (400, "The image is empty.")
    assert refusal(b"%PDF-1.7")[0] == 415
    assert refusal(encode(Image.new("RGB", (64, 64)), "PNG")[:60])[0] == 400
    assert no_children_left()


def crash(*args, **kwargs):
    os.abort()  # as a decoder's heap corruption ends: a signal, no Python exception


def test_a_decoder_crash_is_a_400_and_the_next_picture_reads(monkeypatch):
    monkeypatch.setattr(images, "decode_image", crash)
    status, message = refusal(encode(Image.new("RGB", (64, 64)), "PNG"))
    assert status == 400 and "decoder failed" in message
    monkeypatch.undo()
    assert isolated.decode_image(encode(Image.new("RGB", (64, 64)), "PNG"), LIMIT).size == (64, 64)
    assert no_children_left()


def test_a_picture_costing_more_memory_than_allowed_is_a_413():
    # In a fresh process: the free memory a test run's earlier pictures leave in malloc's arenas would be
    # the child's to use, on top of its allowance. 9 megapixels of flat colour: a 30 kB PNG that Pillow
    # decodes into 36 MB (1500x1500 once shrunk).
    script = """if True:
        import io
        from PIL import Image
        from app import ROOT, images, isolated
        buffer = io.BytesIO()
        Image.new("RGB", (3000, 3000), "white").save(buffer, "PNG")
        print(isolated.decode_image(buffer.getvalue(), 25_000_000).size)
        isolated.MEMORY_BYTES = 20_000_000
        try:
            isolated.decode_image(buffer.getvalue(), 25_000_000)
        except images.ImageError as error:
            print(error.status, error.message)
    """
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["(1500, 1500)", "413 The image needs more memory to decode than one upload may use."]


def spin(*args, **kwargs):
    while True:
        pass


def sleep(*args, **kwargs):
    time.sleep(60)


@pytest.mark.parametrize("stall", [spin, sleep], ids=["cpu", "wall-clock"])
def test_a_decoder_that_does_not_finish_is_a_413_on_time(monkeypatch, stall):
    monkeypatch.setattr(images, "decode_image", stall)
    monkeypatch.setattr(isolated, "CPU_SECONDS", 1)
    monkeypatch.setattr(isolated, "WALL_SECONDS", 2)
    began = time.monotonic()
    status, message = refusal(b"any bytes")
    assert status == 413 and "to decode" in message
    assert time.monotonic() - began < 4
    assert no_children_left()


def test_a_bug_in_the_child_is_the_workers_500_with_its_trace(monkeypatch, client):
    def bug(*args, **kwargs):
        return {}["missing"]

    monkeypatch.setattr(images, "decode_image", bug)
    with pytest.raises(RuntimeError, match="KeyError: 'missing'"):
        isolated.decode_image(b"any bytes", LIMIT)
    response = client.post("/predict", data=b"any bytes", content_type="image/png")
    assert response.status_code == 500 and "KeyError" not in response.get_data(as_text=True)


def test_the_api_decodes_in_a_child_and_keeps_serving(monkeypatch, client):
    png = encode(Image.new("RGB", (64, 64), "white"), "PNG")
    monkeypatch.setattr(images, "decode_image", crash)
    response = client.post("/predict", data=png, content_type="image/png")
    assert response.status_code == 400 and "decoder failed" in response.get_json()["error"]
    monkeypatch.undo()
    assert client.post("/predict", data=png, content_type="image/png").status_code == 200


def test_large_pictures_wait_for_the_workers_turn_and_small_ones_do_not():
    side = int(LARGE_PIXELS ** 0.5) + 10
    large, small = (encode(Image.new("RGB", size, "white"), "PNG") for size in ((side, side), (64, 64)))
    done = threading.Event()
    with images.one_large_at_a_time:  # another thread of the worker is decoding a large picture
        waiting = threading.Thread(target=lambda: (isolated.decode_image(large, LIMIT), done.set()))
        waiting.start()
        assert isolated.decode_image(small, LIMIT).size == (64, 64)
        assert not done.wait(1.0)
    assert done.wait(10)
    waiting.join()
    assert no_children_left()


def test_elsewhere_than_linux_the_worker_decodes_itself(monkeypatch):
    def no_fork():
        raise AssertionError("forked")

    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(os, "fork", no_fork)
    assert isolated.decode_image(encode(Image.new("RGB", (64, 48)), "PNG"), LIMIT).size == (64, 48)


@pytest.mark.parametrize("failure", [MemoryError(), RuntimeError("Out of memory")], ids=["python", "libheif"])
def test_a_decoder_out_of_memory_is_a_413_and_other_failures_a_400(monkeypatch, failure):
    data = encode(Image.new("RGB", (64, 64)), "PNG")
    raised = [failure]

    def fails(self):
        raise raised[0]

    monkeypatch.setattr(Image.Image, "load", fails)
    assert refusal(data) == (413, images.OUT_OF_MEMORY)  # in the child
    with pytest.raises(ImageError) as caught:  # and where the worker decodes itself
        images.decode_image(data, LIMIT)
    assert (caught.value.status, caught.value.message) == (413, images.OUT_OF_MEMORY)
    raised[0] = OSError("broken data stream")
    assert refusal(data)[0] == 400


def test_a_failed_fork_leaves_no_descriptor_open(monkeypatch):
    def no_more_processes():
        raise BlockingIOError(11, "Resource temporarily unavailable")  # EAGAIN at the process limit

    before = len(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(os, "fork", no_more_processes)
    for _ in range(5):
        with pytest.raises(BlockingIOError):
            isolated.decode_image(b"any bytes", LIMIT)
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_stopping_dyno_lets_the_child_finish_and_an_outside_kill_is_a_503(monkeypatch):
    png = encode(Image.new("RGB", (64, 48)), "PNG")
    real = images.decode_image
    signals = [signal.SIGTERM]

    def signalled(*args, **kwargs):
        os.kill(os.getpid(), signals[0])  # Heroku's SIGTERM reaches every process of the dyno
        return real(*args, **kwargs)

    monkeypatch.setattr(images, "decode_image", signalled)
    assert isolated.decode_image(png, LIMIT).size == (64, 48)
    signals[0] = signal.SIGKILL  # the kernel's out-of-memory killer: not the file's fault
    assert refusal(png)[0] == 503


def test_a_child_that_exits_without_answering_is_the_workers_500(monkeypatch):
    monkeypatch.setattr(images, "decode_image", lambda *args, **kwargs: os._exit(3))
    with pytest.raises(RuntimeError, match="exited with status 3 without answering"):
        isolated.decode_image(b"any bytes", LIMIT)


def test_pillows_plugins_are_loaded_once_in_the_worker_not_in_each_child():
    assert Image._initialized == 2  # app.images called Image.init(): every opener registered


def test_the_decoders_complaints_stay_out_of_the_servers_log(tmp_path):
    # Pillow 13 warns once for each EXIF entry it skips (its values, with those before, come to more than the
    # block): these 1,500 entries sharing 100 bytes, in a 28 kB JPEG, made 1,300 lines of the worker's stderr.
    # Run as the server runs, outside pytest, whose own capture of warnings a child would inherit.
    import struct

    count = 1500
    block = b"II*\x00" + struct.pack("<IH", 8, count)
    block += b"".join(struct.pack("<HHII", 0x9000 + i, 7, 100, 8 + 2 + 12 * count + 4) for i in range(count))
    (tmp_path / "photo.jpg").write_bytes(encode(Image.new("RGB", (64, 64), "white"), "JPEG",
                                                exif=b"Exif\0\0" + block + bytes(4 + 100)))
    read = ("import sys; from pathlib import Path; from app import isolated; "
            "print(isolated.decode_image(Path(sys.argv[1]).read_bytes(), 25_000_000).size)")
    done = subprocess.run([sys.executable, "-c", read, str(tmp_path / "photo.jpg")], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, "(64, 64)\n", "")
