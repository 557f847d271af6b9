"""Surfaces without digits: plain textures and stretches of real wall.

They are what the networks learn "no number" from, the ground that recombined and rendered
numbers stand on, and the backgrounds of the localiser's scenes.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter


def texture(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """A plain surface: flat, a lighting gradient, blotches, boards or bricks, or stripes."""
    w, h = size
    kind = int(rng.integers(5))
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    low, high = sorted(rng.uniform(0, 255, 2))
    if kind == 0:
        pixels = np.full((h, w), rng.uniform(0, 255), np.float32)
    elif kind == 1:
        angle = rng.uniform(0, 2 * np.pi)
        ramp = xs * np.cos(angle) + ys * np.sin(angle)
        pixels = low + (high - low) * (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1.0)
    elif kind == 2:
        cell = int(rng.integers(4, 40))
        coarse = rng.uniform(low, high, (h // cell + 2, w // cell + 2)).astype(np.float32)
        pixels = np.asarray(Image.fromarray(coarse, "F").resize((w, h), Image.Resampling.BICUBIC))
    elif kind == 3:
        row = int(rng.integers(6, 40))
        brick = int(rng.integers(row, 5 * row))
        shifted = xs + (ys // row % 2) * brick / 2
        joints = (ys % row < max(1, row // 8)) | (rng.random() < 0.7) & (shifted % brick < max(1, row // 8))
        pixels = np.where(joints, low, high) + rng.normal(0, 6, (h, w))
    else:
        angle, period = rng.uniform(0, np.pi), rng.uniform(4, 40)
        pixels = low + (high - low) * (np.sin((xs * np.cos(angle) + ys * np.sin(angle)) * 2 * np.pi / period) > 0)
    pixels = pixels + rng.normal(0, rng.uniform(0, 10), (h, w))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "L")
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2))) if rng.random() < 0.5 else image


def background(rng: np.random.Generator, size: tuple[int, int], walls: list[Image.Image]) -> Image.Image:
    """A surface with no digit: a texture, or a stretch of real wall (photo regions away from digits)."""
    if not walls or rng.random() < 0.4:
        return texture(rng, size)
    wall = walls[int(rng.integers(len(walls)))]
    return wall.resize(size, Image.Resampling.BILINEAR)
