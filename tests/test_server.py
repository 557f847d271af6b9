"""The real server: gunicorn started with the Procfile's own command, called over HTTP."""
import base64
import http.client
import json
import os
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.images import LARGE_PIXELS
from model.preprocess import protocol_crop
from tests.conftest import FIXTURES, encode
from tests.test_api import CROP_FLOOR
from tests.test_images import HEIC, png_header
from tests.test_turn import holder

ROOT = Path(__file__).resolve().parent.parent
UPLOAD_LIMIT = 2_000_000  # the server's MAX_UPLOAD_BYTES here, so the oversized upload stays small


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


UPLOAD_SECONDS = 3  # the server's UPLOAD_SECONDS here, so that a trickling client is cut off soon


def procfile_command(root: Path, port: int, **settings: str) -> tuple[list[str], dict]:
    """The Procfile's web command and its environment: this one's, one worker, `settings` over both."""
    command = next(line.split(":", 1)[1] for line in (root / "Procfile").read_text().splitlines() if line.startswith("web:"))
    env = {**os.environ, "PORT": str(port), "WEB_CONCURRENCY": "1", **settings,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return shlex.split(command), env


def started(root: Path, **settings: str):
    """gunicorn started from `root` as its Procfile says, once it answers /healthz: (process, url)."""
    port = free_port()
    command, env = procfile_command(root, port, **settings)
    process = subprocess.Popen(command, cwd=root, env=env, start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=2)
            return process, url
        except (urllib.error.URLError, ConnectionError):
            if process.poll() is not None or time.time() > deadline:
                process.kill()
                pytest.fail("gunicorn did not start:\n" + process.stdout.read().decode(errors="replace"))
            time.sleep(0.2)


def stopped(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=20)


@pytest.fixture(scope="module")
def server():
    process, url = started(ROOT, MAX_UPLOAD_BYTES=str(UPLOAD_LIMIT), UPLOAD_SECONDS=str(UPLOAD_SECONDS))
    yield url
    stopped(process)


def test_healthz_over_http(server):
    with urllib.request.urlopen(server + "/healthz", timeout=5) as response:
        assert response.status == 200
        assert json.load(response)["status"] == "ok"


def post(url: str, data: bytes, content_type: str) -> dict:
    request = urllib.request.Request(url + "/predict", data=data, headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        return json.load(response)


def test_predict_over_http(server, client, test_samples):
    # Real photos 1-50, cropped as in the crop protocol: the server reads them as the app does in-process.
    right = 0
    for sample in test_samples:
        with Image.open(sample.path) as image:
            data = encode(protocol_crop(image.convert("RGB"), list(sample.boxes)))
        body = post(server, data, "image/png")
        assert body == client.post("/predict", data=data, content_type="image/png").get_json() | {"model_ms": body["model_ms"]}
        right += body["number"] == sample.number
    assert right / len(test_samples) >= CROP_FLOOR, f"read {right} of {len(test_samples)}"


def test_bad_upload_over_http_is_a_json_4xx(server):
    request = urllib.request.Request(server + "/predict", data=b"junk", headers={"Content-Type": "image/jpeg"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 415
    assert "error" in json.load(caught.value)


def multipart(field: str, data: bytes, filename: str = "upload") -> tuple[bytes, str]:
    boundary = "hostile-matrix-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def hostile_matrix() -> list[tuple[str, bytes, str, int]]:
    """(case, body, content type, expected status): the issue's list of bad and odd inputs, each one."""
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    png, jpeg = encode(photo, "PNG"), encode(photo, "JPEG")
    frames = [Image.new("L", (16, 16), v) for v in (0, 255)]
    ramp = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    as_json = lambda value: json.dumps(value).encode()  # noqa: E731
    return [
        ("empty body", b"", "", 400),
        ("empty image body", b"", "image/png", 400),
        ("multipart without the image field", *multipart("photo", png), 400),
        ("wrong content type", b"hello", "text/plain", 415),
        ("form-urlencoded", b"image=abc", "application/x-www-form-urlencoded", 415),
        ("malformed base64", as_json({"image": "data:image/png;base64,@@@"}), "application/json", 400),
        ("truncated base64", as_json({"image": base64.b64encode(png).decode()[:-3]}), "application/json", 400),
        ("base64 of a truncated PNG", as_json({"image": base64.b64encode(png[:100]).decode()}), "application/json", 400),
        ("bad JSON", b"{not json", "application/json", 400),
        ("JSON number", as_json({"image": 12}), "application/json", 400),
        ("JSON null", as_json({"image": None}), "application/json", 400),
        ("JSON list", as_json(["image"]), "application/json", 400),
        ("JSON nested", as_json({"image": {"data": "x"}}), "application/json", 400),
        ("data URL of text", as_json({"image": "data:text/plain;base64,aGVsbG8="}), "application/json", 415),
        ("non-image bytes", b"hello, not a picture", "image/png", 415),
        ("PDF", b"%PDF-1.4 not an image", "image/png", 415),
        ("SVG", b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>', "image/svg+xml", 415),
        ("truncated PNG", png[: len(png) // 2], "image/png", 400),
        ("truncated JPEG", jpeg[: len(jpeg) // 2], "image/jpeg", 400),
        ("truncated HEIC", HEIC.read_bytes()[:300], "image/heic", 400),
        ("0x0 PNG", png_header(0, 0), "image/png", 400),
        ("decompression bomb", encode(Image.new("1", (30000, 30000))), "image/png", 413),
        ("upload above the size limit", b"\0" * (UPLOAD_LIMIT + 1), "image/png", 413),
        ("1x1 PNG", encode(Image.new("RGB", (1, 1))), "image/png", 200),
        ("2048x1 PNG", encode(Image.new("RGB", (2048, 1))), "image/png", 200),
        ("animated GIF", encode(frames[0], "GIF", save_all=True, append_images=frames[1:]), "image/gif", 200),
        ("CMYK JPEG", encode(Image.new("CMYK", (40, 20), (0, 0, 0, 40)), "JPEG"), "image/jpeg", 200),
        ("16-bit PNG", encode(Image.fromarray(ramp)), "image/png", 200),
        ("greyscale PNG", encode(photo.convert("L")), "image/png", 200),
        ("grey and alpha PNG", encode(photo.convert("LA")), "image/png", 200),
        ("RGBA PNG", encode(photo.convert("RGBA")), "image/png", 200),
        ("WebP", encode(photo, "WEBP"), "image/webp", 200),
        ("HEIC from an iPhone", HEIC.read_bytes(), "image/heic", 200),
        ("HEIC in multipart", *multipart("image", HEIC.read_bytes(), "IMG_0001.HEIC"), 200),
    ]


def send(url: str, body: bytes, content_type: str, chunked: bool = False) -> tuple[int, dict]:
    """POST /predict with exactly these headers (urllib would add a form content type of its own);
    `chunked`: the body in 64 kB chunks, with no Content-Length, as a streaming client sends it."""
    connection = http.client.HTTPConnection(urllib.parse.urlsplit(url).netloc, timeout=30)
    headers = {"Content-Type": content_type} if content_type else {}
    if chunked:
        whole = body
        body = (whole[i:i + 65536] for i in range(0, len(whole), 65536))
    try:
        connection.request("POST", "/predict", body=body, headers=headers, encode_chunked=chunked)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_hostile_matrix_then_still_serving(server):
    for case, body, content_type, expected in hostile_matrix():
        status, answer = send(server, body, content_type)
        assert status == expected, f"{case}: {status} {answer}"
        assert isinstance(answer.get("error" if status >= 400 else "number"), str), case
    # The same server still answers, and reads a real photo right: SVHN test 11 is "34".
    with urllib.request.urlopen(server + "/healthz", timeout=5) as response:
        assert response.status == 200
    status, answer = send(server, (FIXTURES / "svhn_test" / "11.png").read_bytes(), "image/png")
    assert status == 200 and answer["number"] == "34"
    status, answer = send(server, HEIC.read_bytes(), "image/heic")
    assert status == 200 and answer["number"] == "34"


def test_a_chunked_upload_over_the_size_limit_is_413_not_a_damaged_image(server):
    # No Content-Length to refuse up front: the body stops at the limit, and was once read as a cut PNG (400).
    # Just over the limit, so that the unread rest fits the socket's buffers: the server answers
    # without reading it, and a client still sending a long rest would see the connection close.
    over = encode(Image.new("RGB", (8, 8))) + bytes(UPLOAD_LIMIT)
    status, answer = send(server, over, "image/png", chunked=True)
    assert status == 413 and "larger than" in answer["error"]
    as_json = json.dumps({"image": "data:image/png;base64," + "A" * UPLOAD_LIMIT}).encode()
    status, answer = send(server, as_json, "application/json", chunked=True)
    assert status == 413 and "larger than" in answer["error"]
    # Under the limit, a chunked body is read as any other: SVHN test 11 is "34".
    status, answer = send(server, (FIXTURES / "svhn_test" / "11.png").read_bytes(), "image/png", chunked=True)
    assert status == 200 and answer["number"] == "34"


def raw_exchange(url: str, head: bytes, body_parts: list[bytes], pause: float = 0.0) -> bytes:
    """Sends a request byte-exact (head, then each part after `pause` s, until the server answers)
    and returns all that the server sent before it closed the connection."""
    with socket.create_connection(urllib.parse.urlsplit(url).netloc.split(":"), timeout=30) as connection:
        connection.sendall(head)
        for part in body_parts:
            time.sleep(pause)
            connection.sendall(part)
            if select.select([connection], [], [], 0)[0]:  # an answer before the whole body: stop sending
                break
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
        return answer


def test_clients_that_trickle_their_upload_are_cut_off_and_the_server_keeps_answering(server):
    # One worker of two threads: two trickling clients once held both threads for as long as they liked.
    head = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n"
    answers = []
    slow = [threading.Thread(target=lambda: answers.append(raw_exchange(server, head, [b"\0"] * 1000, pause=0.5)))
            for _ in range(2)]
    started = time.monotonic()
    for thread in slow:
        thread.start()
    for thread in slow:
        thread.join(timeout=UPLOAD_SECONDS + 20)
    assert len(answers) == 2 and time.monotonic() - started < UPLOAD_SECONDS + 10
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 408") and b"took too long" in answer, answer[:300]
        # The rest of the body is never read as a request of its own (gunicorn's HTML 400 after the 408).
        assert b"\r\nConnection: close\r\n" in answer and answer.count(b"HTTP/1.1 ") == 1, answer
    with urllib.request.urlopen(server + "/healthz", timeout=5) as response:
        assert response.status == 200


def test_a_chunked_upload_in_capitals_is_cut_off_too(server):
    # gunicorn reads "Transfer-Encoding: Chunked" as chunked; the deadline once only knew "chunked".
    head = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nTransfer-Encoding: Chunked\r\n\r\n"
    started = time.monotonic()
    answer = raw_exchange(server, head, [b"1\r\n\0\r\n"] * 100, pause=0.5)
    assert answer.startswith(b"HTTP/1.1 408") and time.monotonic() - started < UPLOAD_SECONDS + 10, answer[:300]


def test_a_connection_kept_alive_outlives_the_upload_deadline(server):
    # The deadline is for the body's arrival, and a connection kept alive is for the next request
    # (Heroku's router holds them for 90 s): answered in time, it stays open past UPLOAD_SECONDS.
    connection = http.client.HTTPConnection(urllib.parse.urlsplit(server).netloc, timeout=30)
    try:
        connection.request("POST", "/predict", body=(FIXTURES / "svhn_test" / "11.png").read_bytes(),
                           headers={"Content-Type": "image/png"})
        assert connection.getresponse().read() and connection.sock is not None
        # Refused once its body was read (not an image): the deadline stands down all the same.
        connection.request("POST", "/predict", body=b"\0" * 50_000, headers={"Content-Type": "image/png"})
        refused = connection.getresponse()
        assert refused.status == 415 and refused.read() and connection.sock is not None
        time.sleep(UPLOAD_SECONDS + 1)
        connection.request("GET", "/healthz")
        assert connection.getresponse().status == 200
    finally:
        connection.close()


def test_a_malformed_chunked_body_is_a_400_not_a_500(server):
    head = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n"
    answer = raw_exchange(server, head, [b"ZZ\r\nhello\r\n0\r\n\r\n"])
    assert answer.startswith(b"HTTP/1.1 400") and b"not valid HTTP" in answer, answer[:300]
    assert b"\r\nConnection: close\r\n" in answer and answer.count(b"HTTP/1.1 ") == 1, answer


def test_every_form_of_upload_read_whole_keeps_the_connection(server, test_samples):
    # The page posts multipart on one connection after another: each body read to its end keeps it.
    png = test_samples[0].path.read_bytes()
    form, form_type = multipart("image", png, "1.png")
    uploads = [(form, form_type), (png, "image/png"), (png, "application/octet-stream"),
               (json.dumps({"image": base64.b64encode(png).decode()}).encode(), "application/json")]
    connection = http.client.HTTPConnection(urllib.parse.urlsplit(server).netloc, timeout=30)
    try:
        for body, content_type in uploads:
            connection.request("POST", "/predict", body=body, headers={"Content-Type": content_type})
            answer = connection.getresponse()
            assert answer.status == 200 and json.loads(answer.read())["number"] == test_samples[0].number
            assert answer.getheader("Connection") == "keep-alive", content_type
    finally:
        connection.close()


def test_a_refusal_before_the_body_is_read_closes_the_connection(server):
    # gunicorn would drain what it could of the unread body for up to 5 s, holding a thread, and then
    # close the connection it had called kept alive: a request sent behind it was never answered.
    head = b"POST /predict?kind=bad HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 500000\r\n\r\n"
    started = time.monotonic()
    answer = raw_exchange(server, head, [b"\0" * 1000 + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"])
    assert answer.startswith(b"HTTP/1.1 400") and b"Unknown kind" in answer, answer[:300]
    assert b"\r\nConnection: close\r\n" in answer and answer.count(b"HTTP/1.1 ") == 1, answer
    assert time.monotonic() - started < 3
    # Whatever the answer: a GET sent with a body it does not read.
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 500000\r\n\r\n"
    answer = raw_exchange(server, head, [b"\0" * 1000 + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"])
    assert answer.startswith(b"HTTP/1.1 200") and b"\r\nConnection: close\r\n" in answer, answer[:300]


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_an_upload_over_the_limit_says_the_connection_closes(server, chunked):
    # Its body is not read: gunicorn said "keep-alive" and then closed it, so a client that sent its next
    # request there found a broken pipe. It now says "close", and closes.
    framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % (UPLOAD_LIMIT + 1)
    head = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n" + framing + b"\r\n\r\n"
    part = b"%x\r\n%s\r\n" % (65536, b"\0" * 65536) if chunked else b"\0" * 65536
    answer = raw_exchange(server, head, [part] * (UPLOAD_LIMIT // 65536 + 2))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"\r\nConnection: close\r\n" in answer and answer.count(b"HTTP/1.1 ") == 1, answer


def test_heroku_and_local_tools_get_the_same_python():
    # Heroku reads runtime.txt before .python-version; the major form takes each new patch release.
    runtime = (ROOT / "runtime.txt").read_text().strip()
    assert runtime == "python-" + (ROOT / ".python-version").read_text().strip()
    assert runtime.count(".") == 1, "python-3.X, not an exact release that never gets security fixes"


def test_the_heroku_slug_serves_without_what_slugignore_leaves_out(tmp_path, test_samples):
    # Heroku removes what .slugignore names before the build: the app must not need any of it.
    left_out = [line for line in (ROOT / ".slugignore").read_text().splitlines() if line and not line.startswith("#")]
    assert all(line.startswith("/") for line in left_out), "anchored paths only, as this test reads them"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    slug = tmp_path / "slug"
    kept = [name for name in tracked if name and not any((name + "/").startswith(line[1:] + "/") for line in left_out)]
    assert len(kept) < len(tracked) and not any(name.startswith("tests/") for name in kept)
    for name in kept:
        (slug / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, slug / name)
    process, url = started(slug)
    try:
        sample = test_samples[0]
        assert post(url, sample.path.read_bytes(), "image/png")["number"] == sample.number
        with urllib.request.urlopen(url + "/", timeout=10) as page, urllib.request.urlopen(url + "/openapi.json", timeout=10) as spec:
            assert page.status == 200 and spec.status == 200
    finally:
        stopped(process)


@pytest.mark.parametrize("name, value", [("PORT", "99999"), ("WEB_CONCURRENCY", "0")])
def test_a_server_stopped_by_a_bad_setting_leaves_nothing_behind(tmp_path, monkeypatch, name, value):
    # Its lock folder was made before the settings were checked, and on_exit never ran to remove it.
    monkeypatch.delenv("LARGE_PICTURE_LOCK", raising=False)
    command, env = procfile_command(ROOT, free_port(), **{name: value, "TMPDIR": str(tmp_path)})
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and f"{name}={value!r}" in done.stderr + done.stdout
    assert list(tmp_path.iterdir()) == []


def test_a_server_makes_its_lock_folder_once_bound_and_removes_it_as_it_stops(tmp_path, monkeypatch):
    monkeypatch.delenv("LARGE_PICTURE_LOCK", raising=False)
    process, _ = started(ROOT, TMPDIR=str(tmp_path))
    try:
        assert [folder.name.startswith("digit-reader-") for folder in tmp_path.iterdir()] == [True]
    finally:
        stopped(process)
    assert list(tmp_path.iterdir()) == []


def test_both_workers_wait_for_the_one_turn(tmp_path):
    # The turn is the server's, not a worker's: with another process holding the file gunicorn.conf.py
    # hands its workers, a large picture waits, whichever worker it reaches.
    lock = tmp_path / "turn.lock"
    process, url = started(ROOT, WEB_CONCURRENCY="2", LARGE_PICTURE_LOCK=str(lock))
    try:
        side = int(LARGE_PIXELS ** 0.5) + 10
        large = encode(Image.new("RGB", (side, side), "white"), "PNG")
        other = holder(lock)
        with ThreadPoolExecutor(2) as pool:
            answered = [pool.submit(lambda: (post(url, large, "image/png"), time.monotonic())) for _ in range(2)]
            time.sleep(1.5)
            released = time.monotonic()
            other.stdin.close()
            other.wait(10)
            for answer, at in (future.result() for future in answered):
                assert answer["found"] is False and at > released  # a blank sheet, read once the turn came
    finally:
        stopped(process)
