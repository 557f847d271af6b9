"""The one place that turns uploaded bytes into a picture: Pillow decodes, we only set limits.

Errors carry the HTTP status the web layer should answer with, so bad input becomes a clear
4xx and never a 500.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Raster formats a browser or phone sends ("JPEG" includes the multi-picture MPO files of many
# phones); anything else (SVG, PDF, TIFF, ...) is refused as not an image.
FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP")
# Big photos are decoded at a reduced scale where the format allows it (JPEG's DCT scaling):
# the network reads a 64x64 crop, so more than this many pixels per side is wasted work.
DECODE_SIDE = 1024


class ImageError(ValueError):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def decode_image(data: bytes, max_pixels: int) -> Image.Image:
    """Bytes -> upright RGB image, or ImageError(400/413/415)."""
    if not data:
        raise ImageError(400, "The image is empty.")
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)  # reads the header only
    except Image.DecompressionBombError:  # Pillow's own ceiling, far above ours: a bomb
        raise ImageError(413, f"The image declares more pixels than the limit of {max_pixels:,}.") from None
    except UnidentifiedImageError:
        raise ImageError(415, "This is not an image we can read. Send a PNG, JPEG, GIF, WebP or BMP file.") from None
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageError(400, "The image has no pixels.")
    if width * height > max_pixels:
        raise ImageError(413, f"The image has {width}x{height} pixels; the limit is {max_pixels:,} pixels.")
    try:
        image.draft("RGB", (DECODE_SIDE, DECODE_SIDE))
        image.load()
        drafted = image.size
        image = ImageOps.exif_transpose(image)
        if image.size != drafted:  # turned a quarter: the original's sides swap too
            width, height = height, width
        image = to_rgb(image)
        image.info["original_size"] = (width, height)
        return image
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise ImageError(400, "The image file is damaged or truncated.") from None


def original_size(image: Image.Image) -> tuple[int, int]:
    """The upright size of the uploaded image, before the reduced-scale decoding of big photos."""
    return image.info.get("original_size", image.size)


def to_rgb(image: Image.Image) -> Image.Image:
    """Flatten transparency onto white: a canvas drawing is dark strokes on a transparent sheet."""
    if image.mode.startswith("I"):  # 16-bit PNG: Pillow's own conversion clips at 255 instead of scaling
        pixels = np.asarray(image, dtype=np.float64) / 257.0
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")
