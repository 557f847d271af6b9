"""Handwritten numbers for the canvas: MNIST digits laid side by side as a drawing looks.

MNIST digits are light strokes on black; a drawing on the page is dark strokes on a white
sheet, so the strokes are inverted and set on a light background, 1 to 4 digits in a row.
Only MNIST *train* (less its last 10,000, kept for validation) feeds training; MNIST test is
kept for evaluation.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from model.render import digit_mask


def read_idx(path: str | Path) -> np.ndarray:
    """An idx file of unsigned bytes (optionally gzipped), as MNIST ships -> numpy array shaped by its header."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    dims = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


# MNIST ships only train (60,000) and test (10,000). Tuning on test would make its figure
# optimistic, so the train file's last 10,000 images are held out as validation, as is usual.
MNIST_VAL_START = 50_000
MNIST_SPLITS = ("train", "val", "test")


def mnist_files(split: str = "train") -> tuple[str, str]:
    """The names of the (images, labels) idx files a split is read from, as MNIST's publisher ships them."""
    if split not in MNIST_SPLITS:
        raise ValueError(f"unknown MNIST split {split!r}: one of {MNIST_SPLITS}")
    prefix = "t10k" if split == "test" else "train"
    return f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"


def load_mnist(folder: str | Path, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """-> (images, labels) of one split: "train" (train file [:50,000]), "val" (train file
    [50,000:]) or "test" (the t10k file)."""
    images, labels = (read_idx(Path(folder) / name) for name in mnist_files(split))
    if split == "train":
        return images[:MNIST_VAL_START], labels[:MNIST_VAL_START]
    if split == "val":
        return images[MNIST_VAL_START:], labels[MNIST_VAL_START:]
    return images, labels


def font_digits(fonts: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """The ten digits of each font as MNIST stores a digit (light on black, 20 pixels high in a
    28x28 square): shapes that MNIST's writers seldom draw, such as a 1 with a flag or a 7 with
    a bar, for the drawing reader to learn beside MNIST's."""
    images, labels = [], []
    for font in fonts:
        for digit in range(10):
            mask = digit_mask(font, digit, 20)
            if mask.width > 24:
                mask = mask.resize((24, 20), Image.Resampling.BILINEAR)
            square = Image.new("L", (28, 28), 0)
            square.paste(mask, ((28 - mask.width) // 2, 4))
            images.append(np.asarray(square))
            labels.append(digit)
    return np.stack(images), np.array(labels, np.uint8)


def with_flag(digit: np.ndarray, rng: np.random.Generator, reach: float = 0.35) -> np.ndarray:
    """A 1 (MNIST's light on black) given the flag many people write: a stroke from the top of its
    stick down to the left, at the stick's own width, from 0.15 of the stick's length to `reach`.
    MNIST's 1s are nearly all plain sticks, so a reader that learnt from them alone reads a flagged
    1 as a 7."""
    ink = np.argwhere(digit > 96)  # (row, column)
    if len(ink) < 8:
        return digit
    top, bottom = ink[:, 0].min(), ink[:, 0].max()
    band = max(1, (bottom - top) // 6)
    head, foot = ink[ink[:, 0] <= top + band].mean(0), ink[ink[:, 0] >= bottom - band].mean(0)
    length = float(np.hypot(*(foot - head)))
    if length < 8:
        return digit
    down_y, down_x = (foot - head) / length
    # The stick's downward direction turned by 20-55 degrees towards the left: 35-70 degrees below
    # the horizontal on an upright 1, and slanted with the stick on a slanted one.
    turn = np.radians(90 - rng.uniform(35, 70))
    flag_x = down_x * np.cos(turn) - down_y * np.sin(turn)
    flag_y = down_x * np.sin(turn) + down_y * np.cos(turn)
    # Flatter, and it is a 7's bar (experiments.md). Up to 0.35 of the stick by default: flags up
    # to 0.6 (drawing4) were not shown to read the pad's long flags better (experiments.md).
    reach = length * rng.uniform(0.15, reach)
    width = int(round(np.clip(len(ink) / length, 1.5, 4)))  # ink over length: the stroke's width
    stroke = Image.new("L", digit.shape[::-1], 0)
    ImageDraw.Draw(stroke).line([(head[1], head[0]), (head[1] + flag_x * reach, head[0] + flag_y * reach)],
                                fill=255, width=width)
    return np.maximum(digit, np.asarray(stroke.filter(ImageFilter.GaussianBlur(0.6))))


class Handwriting:
    """Draws numbers of 1-4 MNIST digits as dark strokes on a light sheet, with their digit boxes.

    flag_ones: the share of 1s given a flag (with_flag), flag_reach its longest. repeats: the share
    of numbers whose digits are all one digit, half of them 1s: two plain sticks side by side were
    read as 111, and thin, alike digits are the ones whose count the reader must get right from
    spacing alone.
    Both 0 (evaluation's and validation's drawings): the same numbers as before they existed.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, flag_ones: float = 0.0, repeats: float = 0.0,
                 flag_reach: float = 0.35):
        self.images, self.labels = images, labels
        self.flag_ones, self.repeats, self.flag_reach = flag_ones, repeats, flag_reach
        self.by_digit = [np.flatnonzero(labels == d) for d in range(10)] if repeats else None

    def picks(self, rng: np.random.Generator, length: int) -> np.ndarray:
        if self.repeats and rng.random() < self.repeats:
            digit = 1 if rng.random() < 0.5 else int(rng.integers(0, 10))
            if len(self.by_digit[digit]):
                return rng.choice(self.by_digit[digit], length)
        return rng.integers(0, len(self.labels), length)

    def compose(self, rng: np.random.Generator, length: int | None = None):
        length = length or int(rng.integers(1, 5))
        picks = self.picks(rng, length)
        height = int(rng.integers(40, 110))
        sheet = int(rng.integers(215, 256))
        pieces = []
        for i in picks:
            strokes = self.images[i]
            if self.flag_ones and self.labels[i] == 1 and rng.random() < self.flag_ones:
                strokes = with_flag(strokes, rng, self.flag_reach)
            digit = Image.fromarray(strokes)
            thickness = rng.random()
            if thickness < 0.25:  # thinner or bolder pens than MNIST's own
                digit = digit.filter(ImageFilter.MinFilter(3))
            elif thickness > 0.7:
                digit = digit.filter(ImageFilter.MaxFilter(3))
            left, top, right, bottom = digit.getbbox() or (0, 0, 28, 28)
            digit = digit.crop((left, top, right, bottom))
            scale = height * rng.uniform(0.85, 1.15) / digit.height
            pieces.append(digit.resize((max(2, int(digit.width * scale)), max(2, int(digit.height * scale))), Image.Resampling.BILINEAR))
        gap = rng.uniform(0.05, 0.5) * height
        total = sum(p.width for p in pieces) + gap * (length - 1)
        width = int(max(total * rng.uniform(1.15, 2.5), height * rng.uniform(1.5, 3.0)))
        canvas = Image.new("L", (width, int(height * rng.uniform(1.3, 2.5))), sheet)
        x = (canvas.width - total) * rng.uniform(0.1, 0.9)
        boxes = []
        for piece in pieces:
            y = (canvas.height - piece.height) * rng.uniform(0.3, 0.7)
            ink = Image.new("L", piece.size, int(rng.integers(0, 90)))
            canvas.paste(ink, (int(x), int(y)), piece)  # the stroke intensity is the paste mask
            boxes.append((int(x), int(y), piece.width, piece.height))
            x += piece.width + gap
        return canvas, tuple(int(self.labels[i]) for i in picks), boxes
