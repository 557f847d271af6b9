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

from tests.conftest import FIXTURES

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


def test_predict_over_http(server):
    data = (FIXTURES / "svhn_test" / "2.png").read_bytes()  # a real photo reading "210"
    request = urllib.request.Request(server + "/predict", data=data, headers={"Content-Type": "image/png"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.load(response)
    assert response.status == 200
    assert body["number"] == "210"


def test_bad_upload_over_http_is_a_json_4xx(server):
    request = urllib.request.Request(server + "/predict", data=b"junk", headers={"Content-Type": "image/jpeg"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 415
    assert "error" in json.load(caught.value)
