"""The page visitors use: upload, paste or drop a photo, draw digits, or try a sample
(templates/index.html, static/)."""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from flask import Blueprint, current_app, render_template

bp = Blueprint("pages", __name__)


@cache
def gallery(static_folder: str) -> list[dict]:
    """The sample photos and their true numbers, listed in the page itself so that its first
    render needs no request beyond its own files (built by scripts/samples.py)."""
    manifest = Path(static_folder) / "samples" / "samples.json"
    return json.loads(manifest.read_text()) if manifest.exists() else []


@bp.get("/")
def index():
    return render_template("index.html", samples=gallery(current_app.static_folder),
                           max_upload_bytes=current_app.config["MAX_CONTENT_LENGTH"])
