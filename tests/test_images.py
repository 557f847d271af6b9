"""app.images: the one place bytes become a picture, and every way that can fail."""
import random
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from app.images import MAX_SIDE, ImageError, decode_image, shrink
from tests.conftest import FIXTURES, encode

# SVHN test photo 11 ("34") stored sideways with the rotation an iPhone writes (scripts/make_heic_fixture.py).
HEIC = FIXTURES / "heic" / "11-orientation6.heic"

LIMIT = 1_000_000


def status_of(data: bytes, max_pixels: int = LIMIT) -> int:
    with pytest.raises(ImageError) as caught:
        decode_image(data, max_pixels)
    return caught.value.status


def test_png_and_jpeg_decode_to_rgb():
    image = Image.new("L", (30, 20), 200)
    for fmt in ("PNG", "JPEG", "WEBP", "GIF", "BMP"):
        out = decode_image(encode(image, fmt), LIMIT)
        assert out.mode == "RGB" and out.size == (30, 20), fmt


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (40, 20), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to view": a phone held upright
    out = decode_image(encode(image, "JPEG", exif=exif), LIMIT)
    assert out.size == (20, 40)


def test_transparent_drawing_lands_on_white():
    drawing = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    drawing.putpixel((5, 5), (0, 0, 0, 255))
    pixels = np.asarray(decode_image(encode(drawing), LIMIT))
    assert pixels[0, 0].tolist() == [255, 255, 255] and pixels[5, 5].tolist() == [0, 0, 0]


def test_empty_and_not_an_image():
    assert status_of(b"") == 400
    assert status_of(b"hello, this is text") == 415
    assert status_of(b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>') == 415


def test_truncated_files():
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    for fmt in ("PNG", "JPEG"):
        data = encode(photo, fmt)
        assert status_of(data[: len(data) // 2]) == 400, fmt


def test_too_many_pixels_is_refused_before_decoding():
    assert status_of(encode(Image.new("L", (2000, 1000))), max_pixels=1_000_000) == 413


def test_decompression_bomb_is_413():
    # A 1-bit PNG of 20000 x 20000 pixels compresses to tens of kB but would take 1.2 GB as RGB.
    assert status_of(encode(Image.new("1", (20000, 20000))), max_pixels=40_000_000) == 413


def test_sixteen_bit_png_keeps_its_contrast():
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    out = np.asarray(decode_image(encode(Image.fromarray(ramp)), LIMIT))
    assert out.min() == 0 and out.max() == 255 and 100 < out.mean() < 155


@pytest.mark.parametrize("mode", ["L", "LA", "CMYK", "P", "1", "RGBA"])
def test_every_colour_mode_becomes_rgb(mode):
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    out = decode_image(encode(Image.new(mode, (12, 8)), fmt), LIMIT)
    assert out.mode == "RGB" and out.size == (12, 8)


def test_animated_gif_reads_its_first_frame():
    frames = [Image.new("L", (16, 16), v) for v in (0, 255)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert np.asarray(decode_image(data, LIMIT)).max() == 0


def test_one_pixel_image_decodes():
    assert decode_image(encode(Image.new("RGB", (1, 1))), LIMIT).size == (1, 1)


def png_header(width: int, height: int) -> bytes:
    """A well-formed PNG whose header declares width x height (Pillow cannot even make a 0x0 one)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


@pytest.mark.parametrize("size", [(0, 0), (0, 10), (10, 0)])
def test_image_without_pixels_is_400(size):
    assert status_of(png_header(*size)) == 400


def test_iphone_heic_decodes_upright():
    out = decode_image(HEIC.read_bytes(), LIMIT)
    upright = np.asarray(Image.open(FIXTURES / "svhn_test" / "11.png").convert("RGB"), dtype=float)
    assert out.mode == "RGB" and out.size == (153, 67)  # stored 67 x 153
    pixels = np.asarray(out, dtype=float)
    # Lossy HEVC differs a little from the PNG; turned the wrong way it would differ wholly.
    assert np.abs(pixels - upright).mean() < 3 < np.abs(pixels[::-1, ::-1] - upright).mean()


def test_truncated_heic_and_webp_are_400():
    assert status_of(HEIC.read_bytes()[:300]) == 400
    webp = encode(Image.new("RGB", (64, 64), "red"), "WEBP")
    assert status_of(webp[:20]) == 400 and status_of(webp[: len(webp) // 2]) == 400


def test_big_transparent_png_is_shrunk_and_flattened():
    # 6000 x 3000 RGBA of a few kB: decoded, it is shrunk (band by band) before flattening, so it costs little memory.
    drawing = Image.new("RGBA", (6000, 3000), (0, 0, 0, 0))
    drawing.paste((0, 0, 0, 255), (2000, 1000, 4000, 2000))
    out = decode_image(encode(drawing), 40_000_000)
    assert out.mode == "RGB" and out.size == (2000, 1000) and max(out.size) <= MAX_SIDE
    pixels = np.asarray(out)
    assert (pixels[:333] == 255).all() and (pixels[:, :666] == 255).all()  # transparent: white
    assert (pixels[334:666, 667:1333] == 0).all()  # the opaque block, across several bands: black


def test_shrinking_band_by_band_equals_reducing_at_once():
    noise = Image.fromarray(np.random.default_rng(3).integers(0, 255, (500, MAX_SIDE * 2 + 5, 4), dtype=np.uint8))
    assert np.array_equal(np.asarray(shrink(noise.copy())), np.asarray(noise.reduce(3)))


@pytest.mark.filterwarnings("ignore:Truncated File Read")  # Pillow, on damaged EXIF: it still raises or decodes
def test_damaged_files_of_every_format_give_a_4xx_or_a_picture():
    # Fixed random truncations and byte changes of each format we read: a decoder error must never escape.
    photo = Image.open(FIXTURES / "svhn_test" / "11.png").convert("RGB")
    files = [encode(photo, fmt) for fmt in ("PNG", "JPEG", "GIF", "WEBP", "BMP", "HEIF")] + [HEIC.read_bytes()]
    rng = random.Random(6)
    for data in files:
        for _ in range(40):
            damaged = bytearray(data)
            if rng.random() < 0.4:
                damaged = damaged[: rng.randrange(len(damaged))]
            else:
                for _ in range(rng.randint(1, 8)):
                    damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            try:
                assert decode_image(bytes(damaged), LIMIT).mode == "RGB"
            except ImageError as error:
                assert error.status in (400, 413, 415)
