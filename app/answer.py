"""A pipeline's answer -> the body of /predict's 200: the reading, in the uploaded image's pixels.

Big photos are decoded at a reduced scale (app/images.py), so the pipeline's boxes are in the decoded
picture's pixels; a client draws them on the picture it sent.
"""
from __future__ import annotations

from PIL import Image

from app.images import original_size
from model.pipeline import Answer
from model.preprocess import Box


def answer_body(answer: Answer, image: Image.Image, model: str) -> dict:
    """`image` is the decoded picture the pipeline read; `model` the name of what read it."""
    width, height = original_size(image)
    to_original = width / image.width, height / image.height

    def box(region: Box) -> list[int]:
        left, top, w, h = region
        x0, y0 = max(0.0, left) * to_original[0], max(0.0, top) * to_original[1]
        x1, y1 = min(width, (left + w) * to_original[0]), min(height, (top + h) * to_original[1])
        return [round(x0), round(y0), max(1, round(x1 - x0)), max(1, round(y1 - y0))]

    best = answer.best
    return {
        "found": answer.found,
        "number": answer.number,
        "confidence": round(best.reading.confidence, 4) if answer.found else 0.0,
        "confident": answer.confident,
        "box": box(best.box) if answer.found else None,
        "digit_boxes": [box(b) for b in best.digit_boxes] if answer.found and best.digit_boxes else None,
        "candidates": [{"number": c.reading.number, "confidence": round(c.reading.confidence, 4),
                        "score": round(c.score, 4), "box": box(c.box)} for c in answer.candidates],
        "probabilities": {
            "length": [round(p, 4) for p in best.reading.length_probs],
            "digits": [[round(p, 4) for p in position] for position in best.reading.digit_probs],
        } if best else None,
        "model_ms": round(answer.model_ms, 3),
        "model": model,
        "image": {"width": width, "height": height},
    }
