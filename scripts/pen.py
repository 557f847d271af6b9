"""Numbers drawn with a pen along the strokes of the single-line Hershey font 'futural'
(tests/fixtures/hershey_digits.json, written by scripts/hershey_digits.py), as a visitor draws
them on the page's pad: draw() moves a browser's mouse along these strokes (the browser tests,
scripts/screenshot.py), pen_drawing() draws them with Pillow (the drawing tests, bench.speed).
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


def draw(page, text: str, fill: float = 0.8) -> None:
    """Draws `text` on the pad with the mouse, stroke by stroke, scaled to `fill` of the pad."""
    strokes = hershey_strokes(text)
    xs = [x for stroke in strokes for x, _ in stroke]
    ys = [y for stroke in strokes for _, y in stroke]
    page.locator("#pad").scroll_into_view_if_needed()  # the mouse only reaches what is on screen
    pad = page.locator("#pad").bounding_box()
    scale = min(pad["width"] * fill / (max(xs) - min(xs)), pad["height"] * fill / (max(ys) - min(ys)))
    left = pad["x"] + (pad["width"] - (max(xs) - min(xs)) * scale) / 2 - min(xs) * scale
    top = pad["y"] + (pad["height"] - (max(ys) - min(ys)) * scale) / 2 - min(ys) * scale
    mouse = page.mouse
    for stroke in strokes:
        points = [(left + x * scale, top + y * scale) for x, y in stroke]
        mouse.move(*points[0])
        mouse.down()
        for x, y in points[1:]:
            mouse.move(x, y, steps=3)  # intermediate pointermoves, as a hand makes them
        mouse.up()
