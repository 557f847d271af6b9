"""Numbers read from the environment, checked at start.

A mistyped or out-of-range value stops the server with one line naming the variable. Left unchecked,
`MAX_UPLOAD_BYTES=0` refused every upload while /healthz said ok, `TRUSTED_PROXIES=-1` made every
proxied request a 500, and `UPLOAD_SECONDS=inf` logged a traceback per request.

No imports beyond the standard library: gunicorn.conf.py loads this file by its path, in the master,
which must not import the app (Flask, the models) that only the workers load.
"""
from __future__ import annotations

import math
import os


def whole(name: str, default: int, minimum: int = 1, most: int | None = None) -> int:
    """The whole number in environment variable `name` (at least `minimum`, at most `most`), or `default` when unset."""
    expected = f"a whole number of at least {minimum}" if most is None else f"a whole number from {minimum} to {most}"
    return checked(name, default, int, lambda value: value >= minimum and (most is None or value <= most), expected)


def seconds(name: str, default: float, most: float = 3600) -> float:
    """The number of seconds (above 0, at most `most`) in environment variable `name`, or `default` when
    unset. A ceiling, not just finiteness: Python's timers overflow at about 1e9 s and then log a traceback."""
    return checked(name, default, float, lambda value: math.isfinite(value) and 0 < value <= most,
                   f"a number of seconds above 0 and at most {most:g}")


LEVELS = ("debug", "info", "warning", "error", "critical")


def level(name: str, default: str = "info") -> str:
    """The log level named in environment variable `name` (any case), or `default` when unset."""
    return checked(name, default, str.lower, lambda value: value in LEVELS, "one of " + ", ".join(LEVELS))


def checked(name: str, default, parse, valid, expected: str):
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        value = parse(text)
    except ValueError:
        value = None
    if value is None or not valid(value):
        raise ValueError(f"{name}={text!r}: expected {expected}")
    return value
