"""New house numbers recombined from real SVHN digit crops, pasted on real backgrounds.

2,000 labelled photos hold 4,434 digits but only 2,000 numbers; recombining the digits gives
the network many more sequences (lengths, neighbours, spacings) built from real pixels.
A background is a stretch of a training photo beside its digits, so it has real plate,
wall and lighting texture but no digit of its own.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from model.data import MAX_DIGITS, Sample
from model.preprocess import union_box

# Number lengths of all 33,402 official train images (train_all_labels.json), 1 to 5 digits.
LENGTH_SHARES = np.array([5137, 18130, 8691, 1434, 9], dtype=np.float64)


class DigitBank:
    """Every digit crop of the given photos (grey, with a little context) and their backgrounds."""

    def __init__(self, samples: list[Sample], images: dict):
        self.crops: list[list[Image.Image]] = [[] for _ in range(10)]
        self.backgrounds: list[Image.Image] = []
        for sample in samples:
            image = images[sample.path]
            for digit, (left, top, width, height) in zip(sample.digits, sample.boxes):
                pad_x, pad_y = 0.12 * width, 0.06 * height
                crop = image.crop((int(left - pad_x), int(top - pad_y), int(left + width + pad_x), int(top + height + pad_y)))
                if crop.width >= 4 and crop.height >= 8:
                    self.crops[digit].append(crop)
            self.backgrounds.extend(walls_of(sample, image, min_size=6))

    def compose(self, rng: np.random.Generator) -> tuple[Image.Image, tuple[int, ...], list[tuple]]:
        """One recombined number -> (grey image, digits, digit boxes)."""
        length = int(rng.choice(np.arange(1, MAX_DIGITS + 1), p=LENGTH_SHARES / LENGTH_SHARES.sum()))
        digits = tuple(int(d) for d in rng.integers(0, 10, length))
        height = int(rng.integers(28, 64))
        pieces = []
        for d in digits:
            crop = self.crops[d][int(rng.integers(len(self.crops[d])))]
            scale = height * rng.uniform(0.9, 1.1) / crop.height
            size = (max(3, int(crop.width * scale * rng.uniform(0.85, 1.15))), max(8, int(crop.height * scale)))
            pieces.append(crop.resize(size, Image.Resampling.BILINEAR))
        gap = rng.uniform(-0.08, 0.2) * height
        total = sum(p.width for p in pieces) + gap * (length - 1)
        canvas_w, canvas_h = int(total * rng.uniform(1.5, 2.2)) + 8, int(height * rng.uniform(1.6, 2.2))
        background = self.backgrounds[int(rng.integers(len(self.backgrounds)))]
        canvas = background.resize((canvas_w, canvas_h), Image.Resampling.BILINEAR)
        x = (canvas_w - total) * rng.uniform(0.3, 0.7)
        base_y = (canvas_h - height) * rng.uniform(0.3, 0.7)
        boxes = []
        for piece in pieces:
            y = base_y + rng.uniform(-0.05, 0.05) * height
            canvas.paste(piece, (int(x), int(y)), feathered_mask(piece.size))
            boxes.append((int(x), int(y), piece.width, piece.height))
            x += piece.width + gap
        return canvas, digits, boxes


def feathered_mask(size: tuple[int, int]) -> Image.Image:
    """An opaque rectangle fading out over its border, so a crop's edges blend into the wall."""
    w, h = size
    border = max(1, min(w, h) // 6)
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).rectangle((border, border, w - 1 - border, h - 1 - border), fill=255)
    return mask.filter(ImageFilter.BoxBlur(border))


def walls_of(sample: Sample, image: Image.Image, min_size: int = 12) -> list[Image.Image]:
    """The four stretches of a photo beside its digits' union box (left, right, above, below)."""
    left, top, width, height = union_box(list(sample.boxes))
    strips = ((0, 0, left, image.height), (left + width, 0, image.width, image.height),
              (0, 0, image.width, top), (0, top + height, image.width, image.height))
    return [image.crop(tuple(int(v) for v in strip)) for strip in strips
            if strip[2] - strip[0] >= min_size and strip[3] - strip[1] >= min_size]
