"""The JSON API: POST /predict reads the number in an image, GET /healthz says the model is loaded.

This layer only translates HTTP: it finds the image bytes in the request, hands them to
app.isolated to decode (app.images, in a child process), to the pipeline (model/pipeline.py) to read,
and to app.answer to put the reading in the uploaded image's terms.
"""
from __future__ import annotations

import base64
import binascii
import re

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from app.answer import answer_body
from app.images import ImageError
from app.isolated import decode_image

bp = Blueprint("api", __name__)

DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(;[\w-]+=[\w.-]+)*;base64,", re.IGNORECASE)


def whole_body() -> bytes:
    """The request's body, or 413 when it is over MAX_CONTENT_LENGTH.

    Werkzeug refuses a declared Content-Length over the limit before reading, but a chunked body
    declares none: its stream just stops at the limit, and the cut image would be called damaged.
    A streamed body that reaches the limit is refused as too large (one of exactly the limit
    cannot be told from a longer one once the stream has stopped).
    """
    data = request.get_data()
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is None and limit is not None and len(data) >= limit:
        raise RequestEntityTooLarge()
    return data


def image_bytes() -> bytes:
    """The upload, from a multipart field `image`, a JSON data URL, or a raw image/* body."""
    mimetype = request.mimetype
    if mimetype == "multipart/form-data":
        try:
            upload = request.files.get("image")
        except RequestEntityTooLarge:
            declared, limit = request.content_length, current_app.config["MAX_CONTENT_LENGTH"]
            if declared is None or limit is None or declared > limit:
                raise
            # Werkzeug's own limits on a form's parts, which the body's size does not explain.
            config = current_app.config
            raise ImageError(413, f"The upload has more than {config['MAX_FORM_PARTS']:,} fields, or a text field over "
                                  f"{config['MAX_FORM_MEMORY_SIZE']:,} bytes: send the image as a file in the field 'image'.") from None
        if upload is None:
            if not request.files and not request.form:  # Werkzeug's parser gives up on a cut body silently
                raise ImageError(400, "The multipart upload holds no fields: it is empty, cut short or malformed.")
            if "image" in request.form:  # curl -F image=<file sends the file's bytes as text
                raise ImageError(400, "The field 'image' holds text, not a file: send the file itself (curl -F image=@photo.jpg).")
            raise ImageError(400, "Send the image in a multipart field named 'image'.")
        return upload.read()
    if mimetype == "application/json":
        data = whole_body()  # get_json parses the body read here
        nested = False
        try:
            body = request.get_json(silent=True)
        except RecursionError:  # a 2 kB body of 1,000 nested lists: not what silent=True catches
            body, nested = None, True
        if body is None and not nested and data.strip() != b"null":
            # Most often base64 with its line breaks pasted into the JSON as they are ($(base64 photo.jpg)).
            raise ImageError(400, 'The body is not valid JSON (a line break inside a string is written \\n): '
                                  'send {"image": "data:image/png;base64,..."}.')
        if not isinstance(body, dict) or not isinstance(body.get("image"), str):
            raise ImageError(400, 'Send JSON like {"image": "data:image/png;base64,..."}.')
        text = body["image"].strip()
        match = DATA_URL.match(text)
        if match:
            if match["type"] and not match["type"].lower().startswith("image/"):
                raise ImageError(415, f"The data URL holds {match['type']}, not an image.")
            text = text[match.end():]
        try:
            # Whitespace is ignored: the `base64` command and MIME wrap their output every 76 characters
            # (sent as \\n escapes in the JSON string, or stripped by curl -d @file).
            return base64.b64decode(re.sub(r"\s+", "", text), validate=True)
        except (binascii.Error, ValueError):
            raise ImageError(400, "The 'image' field is not valid base64.") from None
    # The format is read from the bytes whatever the type says, so a body typed as bytes in general, or not
    # typed at all (Python's requests.post(url, data=file)), is read as an image too.
    if mimetype.startswith("image/") or mimetype in ("application/octet-stream", ""):
        data = whole_body()
        if not data:
            raise ImageError(400, "No image: send a multipart field 'image', a JSON data URL, or an image/* body.")
        return data
    if mimetype == "application/x-www-form-urlencoded":  # what curl --data-binary sends unless told otherwise
        raise ImageError(415, "The body is typed as a web form (curl --data-binary's default): send it with "
                              "-H 'Content-Type: image/jpeg', or as a file: curl -F image=@photo.jpg.")
    raise ImageError(415, f"Unsupported content type '{mimetype}': send multipart/form-data, application/json, "
                          "or the image itself (image/*).")


def kinds_in_body() -> list[str]:
    """Any `kind` sent as a form field or JSON key, where the API does not look for it."""
    if request.mimetype == "multipart/form-data":
        return request.form.getlist("kind")
    body = request.get_json(silent=True) if request.mimetype == "application/json" else None  # parsed once, cached
    return [str(body["kind"])] if isinstance(body, dict) and "kind" in body else []


KINDS = ("photo", "drawing")  # ?kind=: a photo goes through the localiser; a drawing (the pad's) is read by its ink


@bp.post("/predict")
def predict():
    kind = request.args.get("kind", "photo")
    if kind not in KINDS:
        raise ImageError(400, f"Unknown kind {kind[:40]!r}: use kind=photo (the default) or kind=drawing.")
    data = image_bytes()
    for sent in kinds_in_body():  # it would be ignored, and a drawing read as a photo
        if sent not in KINDS:
            raise ImageError(400, f"Unknown kind {sent[:40]!r}: use kind=photo (the default) or kind=drawing, "
                                  "in the query string (/predict?kind=drawing).")
        if sent != kind:
            raise ImageError(400, f"kind={sent} was sent in the body; send it in the query string: /predict?kind={sent}.")
    image = decode_image(data, current_app.config["MAX_IMAGE_PIXELS"])
    pipeline = current_app.extensions["pipeline"]
    if kind == "drawing":
        return jsonify(answer_body(pipeline.read_drawing(image), image, pipeline.drawing_reader.name))
    return jsonify(answer_body(pipeline.read(image), image, pipeline.name))


@bp.get("/healthz")
def healthz():
    pipeline = current_app.extensions["pipeline"]
    return jsonify(status="ok", model=pipeline.name, drawing_model=pipeline.drawing_reader.name)
