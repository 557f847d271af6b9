"""Training-time augmentation: a jittered crop of the number, then photometric damage.

Geometry is drawn as four corners around the digits' union box (scale, position, rotation,
shear, perspective) and handed to `preprocess.warp`, the same function serving uses, so the
only difference between a training and a serving input is the jitter itself.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

from model.preprocess import Box, Quad, normalise, warp


def jitter_quad(box: Box, rng: np.random.Generator, image_size: tuple[int, int] | None = None,
                margin=(0.10, 0.50), shift=0.08, rotate=8.0, shear=0.15, perspective=0.04) -> Quad:
    left, top, width, height = box
    cx = left + width / 2 + rng.uniform(-shift, shift) * width
    cy = top + height / 2 + rng.uniform(-shift, shift) * height
    half_w = width * (0.5 + rng.uniform(*margin))
    half_h = height * (0.5 + rng.uniform(*margin))
    if image_size is not None:
        # Keep the rectangle inside the photo, as a crop made by a user would be.
        x0, x1 = max(cx - half_w, 0.0), min(cx + half_w, image_size[0])
        y0, y1 = max(cy - half_h, 0.0), min(cy + half_h, image_size[1])
        cx, cy, half_w, half_h = (x0 + x1) / 2, (y0 + y1) / 2, max((x1 - x0) / 2, 1.0), max((y1 - y0) / 2, 1.0)
    corners = np.array([[-half_w, -half_h], [-half_w, half_h], [half_w, half_h], [half_w, -half_h]])
    corners += rng.uniform(-perspective, perspective, (4, 2)) * [2 * half_w, 2 * half_h]
    angle = np.deg2rad(rng.uniform(-rotate, rotate))
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    transform = rotation @ np.array([[1.0, rng.uniform(-shear, shear)], [0.0, 1.0]])
    corners = corners @ transform.T + [cx, cy]
    return tuple(float(v) for v in corners.ravel())


def damage(grey: Image.Image, rng: np.random.Generator) -> np.ndarray:
    """Photometric augmentation of a warped grey crop -> uint8-range float array."""
    if rng.random() < 0.3:
        grey = grey.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.3)))
    if rng.random() < 0.2:
        buffer = io.BytesIO()
        grey.save(buffer, "JPEG", quality=int(rng.integers(15, 70)))
        grey = Image.open(buffer)
    pixels = np.asarray(grey, dtype=np.float32)
    if rng.random() < 0.4:  # low contrast and a lighting gradient, as on a shaded wall
        ramp = np.linspace(-1, 1, pixels.shape[1])[None, :] * rng.uniform(-40, 40)
        pixels = pixels.mean() + (pixels - pixels.mean()) * rng.uniform(0.3, 1.0) + ramp
    if rng.random() < 0.3:
        pixels = pixels + rng.normal(0, rng.uniform(2, 12), pixels.shape)
    if rng.random() < 0.3:  # numbers come light-on-dark as well as dark-on-light
        pixels = 255 - pixels
    return pixels


def lower_resolution(grey: Image.Image, rng: np.random.Generator, scale=(0.25, 0.6)) -> Image.Image:
    """The crop as a far smaller photo would give it: shrunk (averaging its pixels, as a camera
    sensor does) to a random share of its side, then enlarged back as serving enlarges a small photo."""
    side = max(4, round(grey.width * rng.uniform(*scale)))
    small = grey.resize((side, max(4, round(grey.height * side / grey.width))), Image.Resampling.BOX)
    return small.resize(grey.size, Image.Resampling.BILINEAR)


def augmented_input(image: Image.Image, box: Box, rng: np.random.Generator, low_res: float = 0.0) -> np.ndarray:
    quad = jitter_quad(box, rng, image_size=image.size)
    grey = warp(image, quad=quad)
    if low_res and rng.random() < low_res:  # no draw at 0, so runs without it keep their batches
        grey = lower_resolution(grey, rng)
    return normalise(damage(grey, rng))
