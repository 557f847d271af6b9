"""Every error is JSON `{"error": "..."}` with its status, never an HTML page or a trace; and every
refusal's reason goes to the log, where otherwise only the client would hear it."""
from __future__ import annotations

from flask import Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from app.images import ImageError


def refusal(message: str, status: int, headers=()):
    # Heroku's router gives each request an id, which lines this up with the router's log line.
    current_app.logger.info("%s %r %d %s [request %s]", request.method, request.path, status, message,
                            request.headers.get("X-Request-ID", "-"))
    return jsonify(error=message), status, list(headers)


RETRY_AFTER = "1"  # seconds, for a 503: the server's moment, not the upload's fault


def register(app: Flask) -> None:
    @app.errorhandler(ImageError)
    def bad_upload(error: ImageError):
        return refusal(error.message, error.status, [("Retry-After", RETRY_AFTER)] if error.status == 503 else [])

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        # Werkzeug's and Flask-Limiter's own: 413 from MAX_CONTENT_LENGTH, 404, 405, 408, 429, ...
        messages = {413: f"The upload is larger than the limit of {app.config['MAX_CONTENT_LENGTH']:,} bytes.",
                    429: f"Too many requests from this address (limit: {error.description}); try again later."}
        # The exception's own headers, less its HTML Content-Type: a 405 must still list the Allow-ed methods.
        headers = [(name, value) for name, value in error.get_headers() if name.lower() != "content-type"]
        return refusal(messages.get(error.code, error.description), error.code, headers)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        app.logger.exception("unhandled error")  # the trace goes to the log, never to the client
        return jsonify(error="Something went wrong on the server; try again."), 500
