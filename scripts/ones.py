"""How the pad's drawings of numbers holding 1s are read, for each way people write a 1.

    .venv/bin/python scripts/ones.py [--count 200] [--drawing model/drawing.tflite]

MNIST's 1s are nearly all plain sticks, and a reader that learnt from them read a 1 with a flag as a
7. `model.train --flag-ones` gives MNIST 1s a flag (model/handwriting.py: with_flag); this judges
a reader with another generator than that: numbers drawn along the single-line Hershey font's strokes
(tests/fixtures/hershey_digits.json) with a hand's jitter and slant, painted as the page's pad paints
them (a 480 x 240 sheet, a 16-pixel round pen) and read as POST /predict?kind=drawing reads them.
Each set writes every 1 one way: a plain stick, a flag and a base, the font's own short flag, a long
flag; one more is numbers of plain 1s only (11, 111, 1111), which were read with a 1 too many.
Prints, per set, the numbers read exactly, the 1s read as 7, and the wrong answers marked confident.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from model.pipeline import Pipeline  # noqa: E402
from model.runtime import DEFAULT_DRAWING, DEFAULT_LOCATOR, DEFAULT_MODEL  # noqa: E402
from scripts.pen import GLYPHS as GLYPH_FILE  # noqa: E402

GLYPHS = json.loads(GLYPH_FILE.read_text())["glyphs"]
PAD, PEN, SEED = (480, 240), 16, 11
TOP, FOOT = (11, -12), (11, 9)  # the font's 1: a stick from TOP down to FOOT (y down), 20 units wide
ONES = {  # each way of writing a 1, as strokes in the font's units
    "a plain stick": [[TOP, FOOT]],
    "a flag and a base": [[(6, -8), TOP, FOOT], [(6, 9), (16, 9)]],
    "a short flag (the font's own 1)": GLYPHS["1"]["strokes"],
    "a long flag": [[(3, -3), TOP, FOOT]],
}


def strokes_of(text: str, one: list, rng: np.random.Generator) -> list[np.ndarray]:
    """The number's strokes, digit after digit with a hand's uneven spacing, in font units."""
    strokes, x = [], 0.0
    for digit in text:
        glyph = one if digit == "1" else GLYPHS[digit]["strokes"]
        strokes += [np.array(stroke, float) + (x, 0) for stroke in glyph]
        x += GLYPHS[digit]["advance"] * rng.uniform(0.85, 1.2)
    return strokes


def drawn(strokes: list[np.ndarray], rng: np.random.Generator) -> Image.Image:
    """Strokes slanted, jittered and scaled to the pad as a visitor fills it, painted black on white."""
    slant, size = rng.uniform(-0.05, 0.15), rng.uniform(0.55, 0.85)
    hand = [s @ np.array([[1, 0], [-slant, 1]]) + rng.normal(0, 0.35, s.shape) for s in strokes]
    points = np.concatenate(hand)
    low, high = points.min(0), points.max(0)
    scale = min(PAD[1] * size / (high - low)[1], PAD[0] * 0.9 / (high - low)[0])
    offset = (np.array(PAD) - (high - low) * scale) / 2 - low * scale
    image = Image.new("RGB", PAD, "white")
    draw = ImageDraw.Draw(image)
    for stroke in hand:
        draw.line([tuple(p) for p in stroke * scale + offset], fill="black", width=PEN, joint="curve")
        for end in (stroke[0], stroke[-1]):  # the pad's round pen ends
            x, y = end * scale + offset
            draw.ellipse((x - PEN / 2, y - PEN / 2, x + PEN / 2, y + PEN / 2), fill="black")
    return image


def numbers(rng: np.random.Generator, count: int, only_ones: bool) -> list[str]:
    """Numbers of 1-4 digits holding at least one 1 (or 2-4 digits all 1s)."""
    out = []
    while len(out) < count:
        if only_ones:
            out.append("1" * int(rng.integers(2, 5)))
            continue
        text = "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(1, 5))))
        if "1" in text:
            out.append(text)
    return out


def main(count: int, drawing: str) -> None:
    pipeline = Pipeline(DEFAULT_MODEL, DEFAULT_LOCATOR, drawing)
    sets = [(name, one, False) for name, one in ONES.items()] + [("plain 1s only (11, 111, 1111)", ONES["a plain stick"], True)]
    print(f"{Path(drawing).name}, {count} numbers a set (seed {SEED})")
    print("| a 1 written as | numbers read right | 1s read as 7 | wrong answers marked confident |")
    print("| --- | --- | --- | --- |")
    for name, one, only_ones in sets:
        rng = np.random.default_rng(SEED)
        right = sevens = ones = sure = 0
        for text in numbers(rng, count, only_ones):
            answer = pipeline.read_drawing(drawn(strokes_of(text, one, rng), rng))
            right += answer.number == text
            sure += answer.number != text and answer.confident
            if len(answer.number) == len(text):  # digit by digit only where the count is right
                sevens += sum(t == "1" and r == "7" for t, r in zip(text, answer.number))
            ones += text.count("1")
        print(f"| {name} | {right} of {count} | {sevens} of {ones} | {sure} |", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200, help="numbers in each set")
    parser.add_argument("--drawing", default=str(DEFAULT_DRAWING), help="the drawing reader (.tflite) to judge")
    args = parser.parse_args()
    main(args.count, args.drawing)
