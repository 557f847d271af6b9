"""Numbers drawn with a pen along the strokes of the single-line Hershey font 'futural'
(tests/fixtures/hershey_digits.json, written by scripts/hershey_digits.py), as a visitor draws
them on the page's pad: the browser tests move the mouse along these strokes, the drawing tests
and bench.speed draw them with Pillow.
"""
from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw

GLYPHS = Path(__file__).resolve().parent.parent / "tests/fixtures/hershey_digits.json"


def hershey_strokes(text: str) -> list[list[tuple[float, float]]]:
    """The strokes of a number, each a list of points in font units, digit after digit."""
    font = json.loads(GLYPHS.read_text())["glyphs"]
    strokes, x = [], 0
    for digit in text:
        glyph = font[digit]
        strokes += [[(px + x, py) for px, py in stroke] for stroke in glyph["strokes"]]
        x += glyph["advance"]
    return strokes


def pen_drawing(text: str, height: int = 120, pen: int = 10, border: int = 40) -> Image.Image:
    """`text` drawn `height` pixels high with a round pen, black on a white sheet with `border` around it."""
    strokes = hershey_strokes(text)
    xs, ys = [x for s in strokes for x, _ in s], [y for s in strokes for _, y in s]
    scale = height / (max(ys) - min(ys))
    image = Image.new("RGB", (int((max(xs) - min(xs)) * scale) + 2 * border, height + 2 * border), "white")
    draw = ImageDraw.Draw(image)
    for stroke in strokes:
        draw.line([((x - min(xs)) * scale + border, (y - min(ys)) * scale + border) for x, y in stroke],
                  fill="black", width=pen, joint="curve")
    return image
