"""The JSON API: POST /predict reads the number in an image, GET /healthz says the model is loaded.

This layer only translates HTTP: it finds the image bytes in the request, hands them to
app.images to decode and to the model runtime to read, and turns the result into JSON.
"""
from __future__ import annotations

import base64
import binascii
import re

from flask import Blueprint, current_app, jsonify, request

from app.images import ImageError, decode_image

bp = Blueprint("api", __name__)

DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(;[\w-]+=[\w.-]+)*;base64,", re.IGNORECASE)


def image_bytes() -> bytes:
    """The upload, from a multipart field `image`, a JSON data URL, or a raw image/* body."""
    mimetype = request.mimetype
    if mimetype == "multipart/form-data":
        upload = request.files.get("image")
        if upload is None:
            raise ImageError(400, "Send the image in a multipart field named 'image'.")
        return upload.read()
    if mimetype == "application/json":
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("image"), str):
            raise ImageError(400, 'Send JSON like {"image": "data:image/png;base64,..."}.')
        text = body["image"].strip()
        match = DATA_URL.match(text)
        if match:
            if match["type"] and not match["type"].lower().startswith("image/"):
                raise ImageError(415, f"The data URL holds {match['type']}, not an image.")
            text = text[match.end():]
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ImageError(400, "The 'image' field is not valid base64.") from None
    if mimetype.startswith("image/"):
        return request.get_data()
    if not request.content_length and not mimetype:
        raise ImageError(400, "No image: send a multipart field 'image', a JSON data URL, or an image/* body.")
    raise ImageError(415, f"Unsupported content type '{mimetype}': send multipart/form-data, application/json or image/*.")


@bp.post("/predict")
def predict():
    image = decode_image(image_bytes(), current_app.config["MAX_IMAGE_PIXELS"])
    reading = current_app.extensions["reader"].read(image)
    return jsonify(
        number=reading.number,
        confidence=round(reading.confidence, 4),
        confident=reading.confident,
        probabilities={
            "length": [round(p, 4) for p in reading.length_probs],
            "digits": [[round(p, 4) for p in position] for position in reading.digit_probs],
        },
        model_ms=round(reading.model_ms, 3),
        model=current_app.extensions["reader"].name,
        image={"width": image.width, "height": image.height},
    )


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok", model=current_app.extensions["reader"].name)


@bp.errorhandler(ImageError)
def image_error(error: ImageError):
    return jsonify(error=error.message), error.status
