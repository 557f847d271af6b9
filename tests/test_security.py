"""Rate limit (off by default, on by environment), no debug from the environment, no leak from an internal fault."""
import io
import logging
import runpy

import pytest
from flask import request

from app import ROOT, create_app
from app.turn import PATH_VARIABLE


def post_png(client, data: bytes, **headers):
    return client.post("/predict", data=data, content_type="image/png", headers=headers)


@pytest.fixture(autouse=True)
def lock_file_of_our_own(monkeypatch, tmp_path):
    # gunicorn.conf.py, run here as gunicorn runs it, would otherwise make a lock folder for this process
    # and leave its path in the environment of the servers later tests start.
    monkeypatch.setenv(PATH_VARIABLE, str(tmp_path / "turn.lock"))


@pytest.fixture(scope="module")
def photo(test_samples) -> bytes:
    return test_samples[0].path.read_bytes()


def test_no_rate_limit_by_default(client, photo):
    assert all(post_png(client, photo).status_code == 200 for _ in range(12))


def test_rate_limit_from_the_environment(monkeypatch, photo):
    monkeypatch.setenv("RATE_LIMIT", "3/minute")
    client = create_app({"TESTING": True}).test_client()
    answers = [post_png(client, photo) for _ in range(4)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    # Retry-After only where the client must wait; the others say how many requests are left.
    assert "Retry-After" not in answers[0].headers and answers[0].headers["X-RateLimit-Remaining"] == "2"
    refused = post_png(client, photo)
    assert refused.status_code == 429 and "Too many requests" in refused.get_json()["error"]
    assert int(refused.headers["Retry-After"]) > 0
    assert "frame-ancestors 'none'" in refused.headers["Content-Security-Policy"]
    # Only reading images is limited: the page, its files and the health check still answer, however often.
    for path in ("/healthz", "/", "/static/app.js", "/openapi.json"):
        assert [client.get(path).status_code for _ in range(4)] == [200] * 4, path


def test_a_mistyped_rate_limit_stops_the_app_at_start(monkeypatch):
    monkeypatch.setenv("RATE_LIMIT", "sixty per minute")
    with pytest.raises(ValueError, match="RATE_LIMIT='sixty per minute' is no rate limit"):
        create_app({"TESTING": True})


@pytest.mark.parametrize("name, value", [
    ("MAX_UPLOAD_BYTES", "0"), ("MAX_UPLOAD_BYTES", "10e6"), ("MAX_IMAGE_PIXELS", "-1"), ("MAX_IMAGE_PIXELS", ""),
    ("TRUSTED_PROXIES", "-1"), ("TRUSTED_PROXIES", "one"), ("UPLOAD_SECONDS", "0"), ("UPLOAD_SECONDS", "inf"),
    ("UPLOAD_SECONDS", "nan"), ("UPLOAD_SECONDS", "-5"), ("UPLOAD_SECONDS", "1e10"), ("LOG_LEVEL", "verbose"),
    ("MODEL_THREADS", "0"), ("MODEL_THREADS", "two"),
])
def test_a_mistyped_number_stops_the_app_at_start_naming_it(monkeypatch, name, value):
    # Left to run, 0 bytes refused every upload while /healthz said ok, -1 proxies made proxied
    # requests 500s, and inf seconds logged a traceback per request.
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=f"^{name}={value!r}: expected "):
        create_app({"TESTING": True})


def test_model_threads_reach_every_network_and_read_the_same(monkeypatch, client, test_samples):
    from model import runtime

    made = []
    real = runtime.Interpreter
    monkeypatch.setattr(runtime, "Interpreter", lambda **kw: made.append(kw["num_threads"]) or real(**kw))
    monkeypatch.setenv("MODEL_THREADS", "2")
    threaded = create_app({"TESTING": True}).test_client()
    assert made == [2, 2, 2]  # the reader, the localiser and the drawing reader
    photo = test_samples[1].path.read_bytes()
    one, two = (c.post("/predict", data=photo, content_type="image/png").get_json() for c in (client, threaded))
    assert two["number"] == one["number"] and abs(two["confidence"] - one["confidence"]) < 1e-4


@pytest.mark.parametrize("name, value", [("WEB_CONCURRENCY", "0"), ("GUNICORN_THREADS", "0"),
                                         ("GUNICORN_THREADS", "two"), ("GUNICORN_KEEPALIVE", "-1"),
                                         ("MALLOC_ARENA_MAX", "0"), ("LOG_LEVEL", "loud"),
                                         ("PORT", "99999"), ("PORT", "abc"), ("PORT", "0")])
def test_a_mistyped_gunicorn_setting_stops_it_in_one_line(monkeypatch, name, value):
    # gunicorn reads its config file in the master: SystemExit's message is all it prints.
    monkeypatch.setenv(name, value)
    expected = {"LOG_LEVEL": "one of debug, info", "PORT": "a whole number from 1 to 65535"}.get(
        name, "a whole number of at least")
    with pytest.raises(SystemExit, match=f"^gunicorn.conf.py: {name}={value!r}: expected {expected}"):
        runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def test_the_log_level_is_set_from_the_environment(monkeypatch):
    monkeypatch.setenv("LOG_LEVEL", "Debug")
    assert create_app({"TESTING": True}).logger.level == logging.DEBUG
    assert runpy.run_path(str(ROOT / "gunicorn.conf.py"))["loglevel"] == "debug"
    monkeypatch.delenv("LOG_LEVEL")
    assert create_app({"TESTING": True}).logger.level == logging.INFO


def test_rate_limit_is_per_client_behind_a_trusted_proxy(monkeypatch, photo):
    monkeypatch.setenv("RATE_LIMIT", "2/minute")
    monkeypatch.setenv("TRUSTED_PROXIES", "1")
    client = create_app({"TESTING": True}).test_client()
    # The router appends the address it saw; what a client wrote before it is not believed.
    first = [post_png(client, photo, **{"X-Forwarded-For": f"6.6.6.{i}, 203.0.113.1"}).status_code for i in range(3)]
    other = post_png(client, photo, **{"X-Forwarded-For": "203.0.113.2"}).status_code
    assert first == [200, 200, 429] and other == 200


def test_debug_cannot_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("FLASK_DEBUG", "1")
    app = create_app()
    assert app.debug is False and app.config["DEBUG"] is False


def test_internal_fault_is_json_500_without_trace_or_path(app, client, photo, monkeypatch):
    def broken(image):
        raise RuntimeError(f"interpreter failed in {ROOT}/model/runtime.py")

    monkeypatch.setattr(app.extensions["pipeline"], "read", broken)
    response = post_png(client, photo)
    assert response.status_code == 500 and response.is_json
    text = response.get_data(as_text=True)
    assert set(response.get_json()) == {"error"}
    assert "Traceback" not in text and str(ROOT) not in text and "runtime.py" not in text and "RuntimeError" not in text


def test_uploads_are_never_spooled_to_disk(app):
    # Werkzeug's own request would write this 2 MB multipart file to a temporary file.
    big = io.BytesIO(b"\0" * 2_000_000)
    with app.test_request_context("/predict", method="POST", data={"image": (big, "big.png")}):
        assert isinstance(request.files["image"].stream, io.BytesIO)


def test_the_models_and_the_server_are_set_from_the_environment(monkeypatch, tmp_path):
    import shutil
    from pathlib import Path

    model = Path(__file__).resolve().parent.parent / "model"
    for name in ("svhn", "locator", "drawing"):
        for suffix in (".tflite", ".json"):
            shutil.copy(model / f"{name}{suffix}", tmp_path / f"my-{name}{suffix}")
    monkeypatch.setenv("MODEL_PATH", str(tmp_path / "my-svhn.tflite"))
    monkeypatch.setenv("LOCATOR_PATH", str(tmp_path / "my-locator.tflite"))
    monkeypatch.setenv("DRAWING_MODEL_PATH", str(tmp_path / "my-drawing.tflite"))
    monkeypatch.setenv("UPLOAD_SECONDS", "12.5")
    for name in ("TRUSTED_PROXIES", "RATE_LIMIT"):  # a developer's shell may set them: they wrap the app further
        monkeypatch.delenv(name, raising=False)
    app = create_app({"TESTING": True})
    pipeline = app.extensions["pipeline"]
    assert (pipeline.reader.path, pipeline.locator.path, pipeline.drawing_reader.path) == \
        (tmp_path / "my-svhn.tflite", tmp_path / "my-locator.tflite", tmp_path / "my-drawing.tflite")
    assert app.wsgi_app.seconds == 12.5
    # A model that is not there stops the app at start, with the path in the message.
    monkeypatch.setenv("DRAWING_MODEL_PATH", str(tmp_path / "gone.tflite"))
    with pytest.raises(FileNotFoundError, match="gone.tflite: no such model file"):
        create_app({"TESTING": True})
    # gunicorn's settings, read as gunicorn reads its config file.
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("GUNICORN_THREADS", "4")
    monkeypatch.setenv("PORT", "5123")
    monkeypatch.setenv("GUNICORN_KEEPALIVE", "7")
    settings = runpy.run_path(str(model.parent / "gunicorn.conf.py"))
    assert (settings["workers"], settings["threads"], settings["bind"], settings["keepalive"]) == (3, 4, "0.0.0.0:5123", 7)
    # One thread keeps the threaded worker (and keep-alive), not gunicorn's sync worker.
    monkeypatch.setenv("GUNICORN_THREADS", "1")
    assert runpy.run_path(str(model.parent / "gunicorn.conf.py"))["worker_class"] == "gthread"


def test_a_refusal_is_logged_with_its_reason_and_request_id(client, caplog):
    # The client hears why; the operator reads it in the log, beside the router's request id.
    with caplog.at_level("INFO", logger="app"):
        client.post("/predict", data=b"hello", content_type="text/plain", headers={"X-Request-ID": "req-42"})
    (line,) = [r.getMessage() for r in caplog.records if r.name == "app"]
    assert line.startswith("POST '/predict' 415 Unsupported content type 'text/plain'") and "[request req-42]" in line
    caplog.clear()
    with caplog.at_level("INFO", logger="app"):
        assert client.get("/healthz").status_code == 200
    assert [r for r in caplog.records if r.name == "app"] == []  # answers are the access log's
