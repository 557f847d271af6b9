"""The reader's input from an image region (`to_input`), and the crop protocol's cut.

Training (with jittered regions) and serving (with the image or a crop box) both call
`to_input`, so the two can never drift apart. Pillow and numpy only: the web process
imports this module and must stay free of TensorFlow.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

INPUT_SIZE = 64  # the network sees INPUT_SIZE x INPUT_SIZE grey pixels
CROP_MARGIN = 0.30  # Goodfellow et al. grow the digits' union box by 30% on every side

Box = tuple[float, float, float, float]  # left, top, width, height in image pixels
Quad = tuple[float, ...]  # 8 numbers: upper-left, lower-left, lower-right, upper-right corners


def union_box(boxes: list[Box]) -> Box:
    left = min(b[0] for b in boxes)
    top = min(b[1] for b in boxes)
    right = max(b[0] + b[2] for b in boxes)
    bottom = max(b[1] + b[3] for b in boxes)
    return left, top, right - left, bottom - top


def grow_box(box: Box, margin: float = CROP_MARGIN) -> Box:
    left, top, width, height = box
    return left - margin * width, top - margin * height, width * (1 + 2 * margin), height * (1 + 2 * margin)


def box_to_quad(box: Box) -> Quad:
    left, top, width, height = box
    right, bottom = left + width, top + height
    return (left, top, left, bottom, right, bottom, right, top)


def to_input(image: Image.Image, box: Box | None = None, quad: Quad | None = None) -> np.ndarray:
    """Image region -> float32 array (INPUT_SIZE, INPUT_SIZE, 1), zero mean and unit contrast.

    `quad` (any four corners, as the training augmentation draws them) wins over `box`
    (an axis-aligned region); with neither, the whole image is used.
    """
    return normalise(np.asarray(warp(image, box, quad), dtype=np.float32))


def warp(image: Image.Image, box: Box | None = None, quad: Quad | None = None) -> Image.Image:
    """Image region -> grey INPUT_SIZE x INPUT_SIZE image. Parts outside the image read as black."""
    if quad is None:
        quad = box_to_quad(box if box is not None else (0, 0, image.width, image.height))
    grey = image if image.mode == "L" else image.convert("L")
    # Shrink big regions by an integer factor first: the quad warp samples bilinearly
    # without filtering, which would alias a 700-pixel region down to 64.
    xs, ys = quad[0::2], quad[1::2]
    factor = int(min(max(xs) - min(xs), max(ys) - min(ys)) // (2 * INPUT_SIZE))
    if factor >= 2:
        grey = grey.reduce(factor)
        quad = tuple(v / factor for v in quad)
    return grey.transform((INPUT_SIZE, INPUT_SIZE), Image.Transform.QUAD, quad, Image.Resampling.BILINEAR)


def normalise(pixels: np.ndarray) -> np.ndarray:
    """Per-image contrast normalisation: digits are light on dark as often as dark on light."""
    pixels = pixels - pixels.mean()
    pixels = pixels / max(float(pixels.std()), 8.0)  # the floor keeps flat images from blowing up noise
    return pixels[..., None].astype(np.float32)


def protocol_crop(image: Image.Image, boxes: list[Box], margin: float = CROP_MARGIN) -> Image.Image:
    """Goodfellow's evaluation crop: the digits' union box grown by `margin` per side, kept inside the photo."""
    left, top, width, height = grow_box(union_box(boxes), margin)
    x0, y0 = min(max(0, int(left)), image.width - 1), min(max(0, int(top)), image.height - 1)
    x1, y1 = min(image.width, int(np.ceil(left + width))), min(image.height, int(np.ceil(top + height)))
    return image.crop((x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)))
