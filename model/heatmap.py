"""The localiser's input and output formats: a letterboxed grey picture in, a centre heat map out.

The localiser (model/locator_net.py) looks at the whole picture shrunk to LOCATOR_SIZE pixels
on its longer side and answers, for each STRIDE x STRIDE cell, the probability that a house
number is centred there, plus the centre's offset in the cell and the number's size (log
scale), as CenterNet does (Zhou et al. 2019, "Objects as Points"). `encode` builds that target
from number boxes for training; `decode` turns the model's output back into boxes in the
original picture's pixels for serving. numpy and Pillow only: the web process imports this.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from model.preprocess import Box, normalise

LOCATOR_SIZE = 192  # the longer side of the picture, as the localiser sees it
STRIDE = 8  # pixels of that picture per heat-map cell
GRID = LOCATOR_SIZE // STRIDE
CHANNELS = 5  # heat, centre offset x and y in the cell, log width and log height in cells
FALSE_ALARMS = 0.025  # share of digit-free validation pictures allowed to score above the "found" threshold


def letterbox(image: Image.Image) -> tuple[Image.Image, float]:
    """Grey picture shrunk so its longer side is LOCATOR_SIZE, laid at the top left of a square.

    The rest of the square takes the picture's mean grey, which `normalise` turns into zeros.
    Returns the square and the scale from original to square pixels.
    """
    grey = image if image.mode == "L" else image.convert("L")
    scale = LOCATOR_SIZE / max(grey.width, grey.height)
    size = (max(1, round(grey.width * scale)), max(1, round(grey.height * scale)))
    # Pillow's resize filters over the whole source footprint, so small numbers do not alias away.
    small = grey.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)
    square = Image.new("L", (LOCATOR_SIZE, LOCATOR_SIZE), int(np.asarray(small).mean()))
    square.paste(small, (0, 0))
    return square, scale


def locator_input(image: Image.Image) -> tuple[np.ndarray, float]:
    square, scale = letterbox(image)
    return normalise(np.asarray(square, dtype=np.float32)), scale


def encode(boxes: list[Box]) -> np.ndarray:
    """Number boxes in letterboxed pixels -> training target (GRID, GRID, CHANNELS).

    The heat channel is 1 at each number's centre cell and falls off as a Gaussian about a
    sixth of the number's size wide, so near misses are punished less than far ones.
    """
    target = np.zeros((GRID, GRID, CHANNELS), np.float32)
    ys, xs = np.mgrid[0:GRID, 0:GRID]
    for left, top, width, height in boxes:
        cx, cy = (left + width / 2) / STRIDE, (top + height / 2) / STRIDE
        ix, iy = int(np.clip(cx, 0, GRID - 1)), int(np.clip(cy, 0, GRID - 1))
        sx, sy = max(width / STRIDE / 6, 0.5), max(height / STRIDE / 6, 0.5)
        bump = np.exp(-((xs - ix) ** 2 / (2 * sx * sx) + (ys - iy) ** 2 / (2 * sy * sy)))
        target[..., 0] = np.maximum(target[..., 0], bump)
        target[iy, ix] = (1.0, cx - ix, cy - iy, np.log(max(width, 1) / STRIDE), np.log(max(height, 1) / STRIDE))
    return target


def decode(output: np.ndarray, scale: float, min_score: float = 0.05, limit: int = 5) -> list[tuple[float, Box]]:
    """Model output (GRID, GRID, CHANNELS) -> [(score, box in original pixels)], best first.

    A peak is a cell at least as hot as its eight neighbours; boxes overlapping a better one
    by more than half are dropped.
    """
    heat = output[..., 0]
    neighbours = np.lib.stride_tricks.sliding_window_view(np.pad(heat, 1), (3, 3)).max(axis=(2, 3))
    iy, ix = np.nonzero((heat >= neighbours) & (heat >= min_score))
    found: list[tuple[float, Box]] = []
    for k in np.argsort(-heat[iy, ix]):
        y, x = iy[k], ix[k]
        _, dx, dy, log_w, log_h = output[y, x]
        width, height = np.exp(np.clip([log_w, log_h], -3, 6)) * STRIDE
        cx, cy = (x + dx) * STRIDE, (y + dy) * STRIDE
        box = tuple(float(v) / scale for v in (cx - width / 2, cy - height / 2, width, height))
        if all(iou(box, other) <= 0.5 for _, other in found):
            found.append((float(heat[y, x]), box))
        if len(found) == limit:
            break
    return found


def intersection(a: Box, b: Box) -> float:
    """The area two boxes (left, top, width, height) share."""
    return (max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
            * max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])))


def iou(a: Box, b: Box) -> float:
    inter = intersection(a, b)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0
