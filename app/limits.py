"""Optional per-client rate limit on POST /predict (Flask-Limiter), and whom to believe about the client's address.

RATE_LIMIT (e.g. "60/minute", Flask-Limiter's notation) turns it on; unset or empty, there is none.
The counts live in each worker's memory: with WEB_CONCURRENCY workers, a client may get up to that
many times the limit, and a restart forgets them. A shared store (Redis) is not worth it at this size.
"""
from __future__ import annotations

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse_many
from werkzeug.middleware.proxy_fix import ProxyFix

from app.errors import RETRY_AFTER


def init_app(app: Flask) -> Limiter | None:
    # Behind Heroku's router every request comes from the router; its X-Forwarded-For ends with the
    # client's address. Only the last TRUSTED_PROXIES entries are believed: a client can write the rest.
    if app.config["TRUSTED_PROXIES"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["TRUSTED_PROXIES"])
    if not app.config["RATE_LIMIT"]:
        return None
    try:
        parse_many(app.config["RATE_LIMIT"])
    except ValueError:
        # At start, not at the first request: Flask-Limiter would fail every /predict with a 500
        # while /healthz said all was well.
        raise ValueError(f"RATE_LIMIT={app.config['RATE_LIMIT']!r} is no rate limit; write it as 60/minute") from None

    @app.after_request  # registered before the Limiter's own, so it runs after it (Flask runs them in reverse)
    def retry_after_only_when_refused(response):
        # Flask-Limiter puts Retry-After on every answer within the limit too, where it means nothing and can
        # make a client's retry logic wait; X-RateLimit-Remaining and -Reset say how much is left. A 503's
        # is the app's own (app/errors.py), which it raises to the rate window's reset: put back.
        if response.status_code == 503:
            response.headers["Retry-After"] = RETRY_AFTER
        elif response.status_code != 429:
            response.headers.pop("Retry-After", None)
        return response

    return Limiter(
        get_remote_address,
        app=app,
        default_limits=[app.config["RATE_LIMIT"]],
        # The page, its files and /healthz stay free: only reading images costs the server anything.
        default_limits_exempt_when=lambda: request.endpoint != "api.predict",
        storage_uri="memory://",
        headers_enabled=True,  # X-RateLimit-* and, on a 429, Retry-After tell a well-behaved client when to come back
    )
