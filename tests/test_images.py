"""app.images: the one place bytes become a picture, and every way that can fail."""
import numpy as np
import pytest
from PIL import Image

from app.images import ImageError, decode_image
from tests.conftest import encode

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
