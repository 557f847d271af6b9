"""Flask application factory: loads the frozen models once and registers the page and the API."""
from __future__ import annotations

import io
import os
from pathlib import Path

from flask import Flask, Request
from flask_talisman import Talisman

from app import settings
from model.pipeline import Pipeline
from model.runtime import DEFAULT_DRAWING, DEFAULT_LOCATOR, DEFAULT_MODEL

ROOT = Path(__file__).resolve().parent.parent

# The page loads only its own files: no inline script or style, no framing by other sites.
# blob: is the preview of the photo a visitor picks, shown before it is sent.
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "img-src": "'self' blob: data:",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}

DEFAULTS = {
    "MODEL_PATH": str(DEFAULT_MODEL),
    "LOCATOR_PATH": str(DEFAULT_LOCATOR),
    "DRAWING_MODEL_PATH": str(DEFAULT_DRAWING),
    "MAX_CONTENT_LENGTH": 10_000_000,  # bytes per request (env MAX_UPLOAD_BYTES)
    # width x height of one image (env MAX_IMAGE_PIXELS): a 24-megapixel phone photo passes, and the
    # costliest picture allowed (HEIC) takes a worker and its decoding child about 280 MB while it is decoded (bench/peak.py).
    "MAX_IMAGE_PIXELS": 25_000_000,
    "RATE_LIMIT": "",  # per client on /predict, e.g. "60/minute"; empty: none (app/limits.py)
    "TRUSTED_PROXIES": 0,  # proxies in front whose X-Forwarded-For is believed (Heroku: 1)
    # seconds for a request's body to arrive (app/deadline.py): Heroku's router gives up on a request at 30
    "UPLOAD_SECONDS": 30.0,
    # threads each network's interpreter computes with (env MODEL_THREADS): on a 2-core machine 2 took
    # a third to a half off one reading, but under load the requests already fill the cores
    # (docs/performance.md, "Threads per network").
    "MODEL_THREADS": 1,
}


class InMemoryRequest(Request):
    """Werkzeug spools multipart files above 500 kB to a temporary file: uploads stay in memory here,
    so no image is ever written to disk. MAX_CONTENT_LENGTH bounds them."""

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        return io.BytesIO()


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__, static_folder=str(ROOT / "static"), template_folder=str(ROOT / "templates"))
    app.request_class = InMemoryRequest
    app.config.update(DEFAULTS)
    app.config.update({key: os.environ[key] for key in ("MODEL_PATH", "LOCATOR_PATH", "DRAWING_MODEL_PATH", "RATE_LIMIT")
                       if key in os.environ})
    app.config.update(
        MAX_CONTENT_LENGTH=settings.whole("MAX_UPLOAD_BYTES", DEFAULTS["MAX_CONTENT_LENGTH"]),
        MAX_IMAGE_PIXELS=settings.whole("MAX_IMAGE_PIXELS", DEFAULTS["MAX_IMAGE_PIXELS"]),
        TRUSTED_PROXIES=settings.whole("TRUSTED_PROXIES", DEFAULTS["TRUSTED_PROXIES"], minimum=0),
        UPLOAD_SECONDS=settings.seconds("UPLOAD_SECONDS", DEFAULTS["UPLOAD_SECONDS"]),
        MODEL_THREADS=settings.whole("MODEL_THREADS", DEFAULTS["MODEL_THREADS"]),
    )
    # Flask reads FLASK_DEBUG from the environment; no environment turns debug on here, so a stray
    # variable on the server cannot expose the debugger or tracebacks. Only code (tests) can.
    app.config["DEBUG"] = False
    # At INFO (Flask's default shows warnings only): refusals' reasons (app/errors.py); at DEBUG, each
    # decoding's time and memory too (app/isolated.py).
    app.logger.setLevel(settings.level("LOG_LEVEL").upper())
    app.config.update(config or {})
    app.extensions["pipeline"] = Pipeline(app.config["MODEL_PATH"], app.config["LOCATOR_PATH"],
                                          app.config["DRAWING_MODEL_PATH"], app.config["MODEL_THREADS"])
    # HTTPS is the platform's job (Heroku's router terminates TLS), so no redirect here.
    Talisman(app, force_https=False, content_security_policy=CONTENT_SECURITY_POLICY,
             referrer_policy="no-referrer", frame_options="DENY", session_cookie_secure=False)

    from app import api, errors, limits, openapi, pages
    from app.deadline import UploadDeadline

    app.wsgi_app = UploadDeadline(app.wsgi_app, app.config["UPLOAD_SECONDS"])

    limits.init_app(app)

    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(openapi.bp)

    errors.register(app)
    return app
