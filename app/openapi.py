"""GET /openapi.json: the OpenAPI 3 description of the API (app/openapi.json, kept by hand beside app/api.py)."""
from __future__ import annotations

import json
from pathlib import Path

from flask import Blueprint, jsonify

bp = Blueprint("openapi", __name__)

DOCUMENT = json.loads(Path(__file__).with_name("openapi.json").read_text())


@bp.get("/openapi.json")
def openapi():
    return jsonify(DOCUMENT)
