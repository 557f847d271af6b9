"""The real server: gunicorn started with the Procfile's own command, called over HTTP."""
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from model.preprocess import protocol_crop
from tests.conftest import encode
from tests.test_api import CROP_FLOOR

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    command = next(line.split(":", 1)[1] for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    port = free_port()
    env = dict(os.environ, PORT=str(port), WEB_CONCURRENCY="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    process = subprocess.Popen(shlex.split(command), cwd=ROOT, env=env, start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=2)
            break
        except (urllib.error.URLError, ConnectionError):
            if process.poll() is not None or time.time() > deadline:
                process.kill()
                pytest.fail("gunicorn did not start:\n" + process.stdout.read().decode(errors="replace"))
            time.sleep(0.2)
    yield url
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=20)


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
