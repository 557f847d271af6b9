"""Digits drawn far apart: how the drawing path reads them, with and without closing the gaps up.

    .venv/bin/python scripts/wide_gaps.py data/mnist

The drawing reader learnt numbers whose digits stand 0.05 to 0.5 of a digit's height apart
(model/handwriting.py); on the page's pad a visitor may leave far more. This draws 500 numbers of
2 to 4 MNIST val digits (the train file's last 10,000, never the test split) dark on white, 0.6 to
2.0 heights apart, reads them as POST /predict?kind=drawing does, then again with the gaps left as
drawn (model.drawing.Sheet.closed_up undone), and prints both shares read exactly. 500 MNIST val
drawings made as model.evaluate's handwriting protocol makes them (0.05 to 0.5 heights apart) are
read both ways too: closing up touches only gaps wider than the ink's half height, so their
figure should not move.
"""
import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from model.drawing import Sheet  # noqa: E402
from model.handwriting import Handwriting, load_mnist  # noqa: E402
from model.pipeline import Pipeline  # noqa: E402

COUNT, SEED = 500, 7


class FarApart(Handwriting):
    """Numbers of 2-4 digits, 0.6 to 2.0 digit heights apart, black on a white sheet."""

    def compose(self, rng: np.random.Generator, length: int | None = None):
        length = length or int(rng.integers(2, 5))
        picks = rng.integers(0, len(self.labels), length)
        height = int(rng.integers(40, 110))
        pieces = []
        for i in picks:
            digit = Image.fromarray(self.images[i])
            digit = digit.crop(digit.getbbox() or (0, 0, 28, 28))
            scale = height * rng.uniform(0.85, 1.15) / digit.height
            pieces.append(digit.resize((max(2, int(digit.width * scale)), max(2, int(digit.height * scale))),
                                       Image.Resampling.BILINEAR))
        gap = rng.uniform(0.6, 2.0) * height
        total = sum(p.width for p in pieces) + gap * (length - 1)
        canvas = Image.new("L", (int(total * 1.3) + 20, 2 * height), 255)
        x = (canvas.width - total) / 2
        for piece in pieces:
            y = (canvas.height - piece.height) * rng.uniform(0.3, 0.7)
            canvas.paste(Image.new("L", piece.size, 0), (int(x), int(y)), piece)
            x += piece.width + gap
        return canvas, tuple(int(self.labels[i]) for i in picks), []


def main(mnist: str) -> None:
    pipeline = Pipeline()
    digits = load_mnist(mnist, "val")
    closing_up = Sheet.closed_up
    for name, writer in (("far apart", FarApart(*digits)), ("as model.evaluate draws them", Handwriting(*digits))):
        rng = np.random.default_rng(SEED)
        numbers = [writer.compose(rng)[:2] for _ in range(COUNT)]
        for way, method in (("gaps closed up", closing_up), ("gaps as drawn", lambda sheet: sheet)):
            Sheet.closed_up = method
            right = [pipeline.read_drawing(image.convert("RGB")).number == "".join(map(str, truth))
                     for image, truth in numbers]
            print(f"{name}, {way}: {np.mean(right):.1%} of {COUNT} read exactly", flush=True)
    Sheet.closed_up = closing_up


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mnist", help="the folder of MNIST's idx files")
    main(parser.parse_args().mnist)
