"""The one place that turns uploaded bytes into a picture: Pillow decodes, we only set limits.

Errors carry the HTTP status the web layer should answer with, so bad input becomes a clear
4xx and never a 500.
"""
from __future__ import annotations

import io
import os
import struct
from contextlib import AbstractContextManager, nullcontext

import numpy as np
import pillow_heif
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from app import exif, parts
from app.turn import PATH_VARIABLE, Busy, Turn

# iPhones save HEIC by default. libheif applies the photo's rotation while decoding and resets its
# EXIF orientation to 1, so the orientation read below (app/exif.py) does not turn it twice. Embedded thumbnails are
# never read in place of the photo.
pillow_heif.register_heif_opener(thumbnails=False)
# Pillow imports its format plugins at the first open. Done here, once, in the worker: each decoding's
# child would otherwise import them again (+29 ms a HEIC, whose opener comes after all of Pillow's).
Image.init()
# Pillow keeps a PNG's text chunks, inflated, for as long as the picture is decoded: up to 64 MB of
# them by default, on top of the picture. Text beyond this is refused (400) as Pillow opens the file.
PngImagePlugin.MAX_TEXT_MEMORY = 4_000_000

# Raster formats a browser or phone sends ("JPEG" includes the multi-picture MPO files of many
# phones); anything else (SVG, PDF, TIFF, ...) is refused as not an image.
FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "HEIF")
# Big photos are decoded at a reduced scale where the format allows it (JPEG's DCT scaling):
# the network reads a 64x64 crop, so more than this many pixels per side is wasted work.
DECODE_SIDE = 1024
# Other formats decode at full size; they are shrunk to this many pixels per side before any colour
# conversion, each of which would copy the full picture: a 40-megapixel RGBA PNG of a few kB would
# otherwise take some 700 MB to flatten, more than a 512 MB dyno has.
MAX_SIDE = 2 * DECODE_SIDE
# Even so, decoding takes up to about 7 bytes per pixel (HEIC: libheif's planes and Pillow's copy),
# so the server decodes one picture above this size at a time, whatever its workers and threads (app/turn.py).
LARGE_PIXELS = 4_000_000
# The longest a large picture waits for its turn (the costliest decodes in about half a second): then a 503.
TURN_SECONDS = 10
BUSY = "The server is busy reading other large pictures; try again in a moment."
one_large_at_a_time = Turn(os.environ.get(PATH_VARIABLE), timeout=TURN_SECONDS)
REDUCIBLE = ("L", "LA", "RGB", "RGBA", "I", "F", "CMYK", "YCbCr")  # modes Image.reduce() takes
# Bytes that begin like one of FORMATS but do not open are a damaged file (400), not another format (415).
SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")
# Two decoders hold the whole picture several times over, however it is decoded: libwebp's (two RGBA
# canvases and Pillow's copy, some 15 bytes a pixel: a 1 kB, 25-megapixel WebP took a worker to 468
# MB), and libjpeg's for a progressive JPEG or one scanned a channel at a time (every DCT coefficient
# at full size, 2 bytes each, whatever scale it outputs). Both are held to about what the costliest
# picture otherwise takes (HEIC).
RLE = (1, 2)  # BMP's run-length compressions (RLE8, RLE4), which no browser or phone writes
MAX_WEBP_PIXELS = 10_000_000
# Lossless WebP (and WebP with losslessly compressed transparency): libwebp builds tables for each of up
# to one Huffman group per 16 pixels, 65,536 at most, some 13 kB each: 880 MB from a 2 MB file of 1 MP.
MAX_LOSSLESS_WEBP_PIXELS = 90_000
# Pillow keeps an 8-byte pointer per row of each copy of a picture: a 1x25,000,000 PNG took +437 MB.
MAX_ROWS = 65_535
# Pillow opens an animated PNG by filling a picture of its size to draw the first frame over (+100 MB
# at 25 megapixels, before anything is decoded), and keeps it: at the pixel limit a worker reached 293 MB.
MAX_ANIMATED_PNG_PIXELS = 12_500_000
MAX_COEFFICIENT_BYTES = 160_000_000
# HEIC costs more than its pixels say when deeper than 8 bits, with colour at full resolution (4:4:4)
# or with transparency: libheif's planes and Pillow's copy, in bytes a pixel while decoded (measured
# on 25-megapixel files through decode_image: 8-bit 4:2:0 without alpha, a phone's, 7.1). Each kind is
# held to what that one takes at the pixel limit.
HEIF_BYTES_PER_PIXEL = {  # (deeper than 8 bits, full-resolution colour, alpha)
    (False, False, False): 7.1, (True, False, False): 7.6, (False, True, False): 9.0, (False, False, True): 9.0,
    (True, False, True): 11.6, (False, True, True): 11.9, (True, True, False): 14.7, (True, True, True): 19.6}
MAX_HEIF_BYTES = 180_000_000


OUT_OF_MEMORY = "The image needs more memory to decode than one upload may use."


class ImageError(ValueError):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def decode_image(data: bytes, max_pixels: int, one_at_a_time: AbstractContextManager = one_large_at_a_time) -> Image.Image:
    """Bytes -> upright RGB image, or ImageError(400/413/415). A large picture is decoded inside
    `one_at_a_time` (a child process asks its worker for the turn: app/isolated.py)."""
    if not data:
        raise ImageError(400, "The image is empty.")
    try:
        file_parts = parts.count(data)
    except (IndexError, ValueError, struct.error):  # a walk's own slip on a malformed file: still no 500
        raise ImageError(400, "The image file is damaged or truncated.") from None
    over = file_parts.over()
    if over:
        raise ImageError(400, f"The image has more than {parts.MAX_PARTS[over]:,} {over}; pictures have far fewer.")
    if file_parts.coding.startswith("JPEG"):  # before Pillow sees it: decoding it corrupted the worker's heap
        raise ImageError(415, f"This JPEG uses a {file_parts.coding[5:]} that is not read; send a baseline or progressive JPEG.")
    if file_parts.animated_pixels > MAX_ANIMATED_PNG_PIXELS:
        raise ImageError(413, f"The animated PNG has {file_parts.animated_pixels:,} pixels; one is read at most "
                              f"{MAX_ANIMATED_PNG_PIXELS:,} (Pillow fills a second picture as it opens one).")
    if file_parts.largest_item_pixels > max_pixels:  # a HEIF's alpha plane or depth map, decoded with the photo
        raise ImageError(413, f"The image holds a picture of {file_parts.largest_item_pixels:,} pixels; the limit is "
                              f"{max_pixels:,} pixels.")
    image = opened(data, max_pixels)
    width, height = image.size
    coefficients = refuse_costly(image, max_pixels, file_parts)
    try:
        image.draft("RGB", draft_size(width, height))
        with one_at_a_time if is_large(image, width * height, coefficients) else nullcontext():
            image.load()
            turn = exif.TURNS.get(exif.orientation(image))  # a whole float such as 6.0 finds its turn, as in Pillow
            # Shrunk first, then turned: turning a 25-megapixel picture copied all of it (+70 MB).
            image = shrink(image)
            if turn is not None:
                image = image.transpose(turn)
                if turn in exif.QUARTER_TURNS:  # the original's sides swap too
                    width, height = height, width
            image = to_rgb(image)
            image.info["original_size"] = (width, height)
            return image
    except Busy:
        raise ImageError(503, BUSY) from None
    # libheif reports damage (and sizes past its own safety limits) as RuntimeError; a cut EXIF block is struct.error.
    except (OSError, ValueError, SyntaxError, EOFError, RuntimeError, struct.error, Image.DecompressionBombError,
            MemoryError) as error:
        if out_of_memory(error):
            raise ImageError(413, OUT_OF_MEMORY) from None
        raise ImageError(400, "The image file is damaged or truncated.") from None


def is_large(image: Image.Image, declared_pixels: int, coefficients: int) -> bool:
    """Whether a picture, its decoding scale set (draft), is decoded one at a time in the server: by its
    pixels as decoded or, where libjpeg keeps the coefficients at full size whatever the scale, as declared."""
    return image.width * image.height > LARGE_PIXELS or bool(coefficients and declared_pixels > LARGE_PIXELS)


def out_of_memory(error: BaseException) -> bool:
    """Whether a decoder failed for want of memory (MemoryError from Python and Pillow's codecs, "Out of
    memory" from libheif) rather than on damage: a picture too costly for the memory an upload may use."""
    return isinstance(error, MemoryError) or "memory" in str(error).lower()


def opened(data: bytes, max_pixels: int) -> Image.Image:
    """The file opened by Pillow, its header read and nothing decoded yet."""
    try:
        return Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError:  # Pillow's own ceiling, far above ours: a bomb
        raise ImageError(413, f"The image declares more pixels than the limit of {max_pixels:,}.") from None
    except UnidentifiedImageError:
        if looks_like_ours(data):  # a header that declares no pixels (0x0) lands here too
            raise ImageError(400, "The image file is damaged, truncated or has no pixels.") from None
        raise ImageError(415, "This is not an image we can read. Send a PNG, JPEG, HEIC, GIF, WebP or BMP file.") from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as error:  # a format's own check of its header failed
        if out_of_memory(error):  # or an allocation as it opened (an animated PNG's first canvas, HEIC's metadata)
            raise ImageError(413, OUT_OF_MEMORY) from None
        raise ImageError(400, "The image file is damaged, truncated or has no pixels.") from None


def refuse_costly(image: Image.Image, max_pixels: int, file_parts: parts.Parts) -> int:
    """ImageError for a picture that would cost more to decode than the limits allow, judged from its
    header and its parts; else the bytes of coefficients libjpeg will keep (0 for most pictures)."""
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageError(400, "The image has no pixels.")
    if width * height > max_pixels:
        raise ImageError(413, f"The image has {width}x{height} pixels; the limit is {max_pixels:,} pixels.")
    if image.format == "BMP" and image.info.get("compression") in RLE:
        # Pillow's RLE decoder is Python, a step a pixel or run: a 21 kB RLE8 file took 5.4 s.
        raise ImageError(415, "Run-length-encoded BMP is not read; send the picture as PNG or JPEG.")
    if height > MAX_ROWS:
        raise ImageError(413, f"The image is {height:,} pixels tall; the limit is {MAX_ROWS:,} (each row costs memory).")
    if image.format == "WEBP" and file_parts.coding and width * height > MAX_LOSSLESS_WEBP_PIXELS:
        raise ImageError(413, f"The WebP image is lossless (or its transparency is) and has {width}x{height} pixels; such "
                              f"WebP is read at most {MAX_LOSSLESS_WEBP_PIXELS:,} pixels: send it as PNG.")
    if image.format == "WEBP" and width * height > MAX_WEBP_PIXELS:
        raise ImageError(413, f"The WebP image has {width}x{height} pixels; WebP is read whole, at most "
                              f"{MAX_WEBP_PIXELS:,} pixels (send a JPEG for more).")
    if image.format == "HEIF":
        kind = (image.info.get("bit_depth", 8) > 8, image.info.get("chroma", 420) not in (400, 420), "A" in image.mode)
        # Judged by the largest picture coded, not the size shown: a crop (clap) or an alpha plane
        # is decoded whole first (a 1,000-pixel crop of a 25-megapixel one took 389 MB).
        if max(width * height, file_parts.largest_item_pixels) * HEIF_BYTES_PER_PIXEL[kind] > MAX_HEIF_BYTES:
            raise ImageError(413, f"The HEIC image has {width}x{height} pixels at {image.info.get('bit_depth', 8)} bits"
                                  f"{', full colour' if kind[1] else ''}{', with transparency' if kind[2] else ''}: "
                                  f"more than can be decoded here (at most {MAX_HEIF_BYTES / HEIF_BYTES_PER_PIXEL[kind]:,.0f} pixels).")
    coefficients = coefficient_bytes(image) if file_parts.whole_coefficients else 0
    if coefficients > MAX_COEFFICIENT_BYTES:
        raise ImageError(413, f"The JPEG has {width}x{height} pixels in {len(image.layer)} colour channels, stored "
                              f"progressively (or a channel at a time), more than can be decoded here; send it as a baseline JPEG.")
    return coefficients


def draft_size(width: int, height: int) -> tuple[int, int]:
    """The size to ask JPEG's DCT scaling (by 1/2, 1/4 or 1/8) for: each side at least DECODE_SIDE. A
    picture narrower than that asks its shorter side only its share of MAX_SIDE: asking DECODE_SIDE of
    both left a 65,500x381 strip unreduced (+193 MB)."""
    if min(width, height) >= DECODE_SIDE:
        return DECODE_SIDE, DECODE_SIDE
    longer = max(width, height)
    return min(DECODE_SIDE, -(-width * MAX_SIDE // longer)), min(DECODE_SIDE, -(-height * MAX_SIDE // longer))


def coefficient_bytes(image: Image.Image) -> int:
    """What libjpeg holds to decode a JPEG whose coefficients it keeps (app/parts.py): 2 bytes per DCT
    coefficient of every channel at full size (a channel at half the resolution has a quarter of them)."""
    if image.format not in ("JPEG", "MPO") or not image.layer:
        return 0
    most = max(h * v for _, h, v, _ in image.layer)
    return 2 * image.width * image.height * sum(h * v for _, h, v, _ in image.layer) // most


def looks_like_ours(data: bytes) -> bool:
    return (data.startswith(SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")
            or pillow_heif.get_file_mimetype(data[:12]) in ("image/heic", "image/heif"))


def shrink(image: Image.Image) -> Image.Image:
    """At most MAX_SIDE pixels per side, by averaging whole blocks of pixels."""
    factor = -(-max(image.size) // MAX_SIDE)
    if factor < 2:
        return image
    if image.mode == "1":  # averaging keeps thin strokes that nearest-neighbour would drop; same memory
        image = image.convert("L")
    if image.mode not in REDUCIBLE:  # palette (nearest: averaging indices means nothing) and 16-bit grey
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BOX, reducing_gap=None)
        return image
    # Band by band: reduce() premultiplies RGBA into a copy, which should be one band, not the picture.
    band = factor * 64
    small = Image.new(image.mode, (-(-image.width // factor), -(-image.height // factor)))
    for top in range(0, image.height, band):
        small.paste(image.crop((0, top, image.width, min(top + band, image.height))).reduce(factor), (0, top // factor))
    return small


def original_size(image: Image.Image) -> tuple[int, int]:
    """The upright size of the uploaded image, before the reduced-scale decoding of big photos."""
    return image.info.get("original_size", image.size)


GREY = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601 luma, as Pillow's "L"


def to_rgb(image: Image.Image) -> Image.Image:
    """Flatten transparency onto white, or onto black where what shows is light: a canvas drawing is
    strokes on a transparent sheet, dark ones (the page's pen) or light ones (a page with a dark
    background), and light strokes on white would vanish."""
    if image.mode.startswith("I"):  # 16-bit PNG: Pillow's own conversion clips at 255 instead of scaling
        pixels = np.asarray(image, dtype=np.float64) / 257.0
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image if image.mode == "RGBA" else image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, backing(rgba))  # alpha-compositing, with one picture-sized copy
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image if image.mode == "RGB" else image.convert("RGB")


def backing(rgba: Image.Image) -> str:
    """White, or black when the visible pixels are light on the whole (their grey weighted by opacity),
    counted a band of rows at a time so as not to copy the picture."""
    if rgba.getchannel("A").getextrema()[0] == 255:  # opaque throughout (a photo with an unused alpha): nothing shows through
        return "white"
    ink = opacity = 0.0
    for top in range(0, rgba.height, 256):
        band = np.asarray(rgba.crop((0, top, rgba.width, min(top + 256, rgba.height))), dtype=np.float32)
        alpha = band[..., 3]
        ink += float(((band[..., :3] @ GREY) * alpha).sum())
        opacity += float(alpha.sum())
    return "black" if opacity and ink / opacity > 160 else "white"
