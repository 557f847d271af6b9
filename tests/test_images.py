"""app.images: the one place bytes become a picture, and every way that can fail."""
import io
import random
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from app import parts
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


@pytest.mark.parametrize("ink, paper", [((255, 255, 255), (0, 0, 0)), ((255, 230, 0), (0, 0, 0)), ((60, 60, 60), (255, 255, 255))])
def test_transparency_is_laid_on_what_the_ink_stands_out_from(ink, paper):
    # A canvas on a page with a dark background draws light strokes on a transparent sheet: on white they vanished.
    drawing = Image.new("RGBA", (300, 120), (*paper, 0))
    ImageDraw.Draw(drawing).line((20, 60, 280, 60), fill=(*ink, 255), width=6)
    pixels = np.asarray(decode_image(encode(drawing), LIMIT))
    assert pixels[5, 5].tolist() == list(paper) and pixels[60, 150].tolist() == list(ink)


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
    # The limit itself is allowed (the README's limits table: "largest image"), one pixel more is not.
    assert decode_image(encode(Image.new("L", (1000, 1000))), 1_000_000).size == (1000, 1000)
    assert status_of(encode(Image.new("L", (1000, 1000))), max_pixels=999_999) == 413


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


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_a_transparent_palette_drawing_lands_on_white(fmt):
    image = Image.new("P", (12, 8), 0)
    image.putpalette([0, 0, 0] * 256)  # every entry black: only the transparency can make it white
    image.info["transparency"] = 0
    out = decode_image(encode(image, fmt, transparency=0), LIMIT)
    assert out.getpixel((3, 3)) == (255, 255, 255)


@pytest.mark.parametrize("fmt, options", [("TIFF", {}), ("EPS", {}), ("PDF", {}), ("ICO", {}), ("TGA", {}), ("PPM", {})])
def test_formats_outside_the_list_are_refused_unopened(fmt, options):
    # Pillow opens these too (EPS through Ghostscript): only the formats a browser or phone sends are read.
    data = encode(Image.new("RGB", (16, 16), "white"), fmt, **options)
    assert status_of(data) == 415, fmt


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


# ---------- Files that cost time or memory out of proportion to their bytes ----------

def progressive_jpeg(size=(64, 64), mode="RGB", extra_scans=0) -> bytes:
    """A progressive JPEG, its last scan repeated `extra_scans` times (libjpeg decodes each again)."""
    data = encode(Image.new(mode, size, "white" if mode != "CMYK" else (0, 0, 0, 0)), "JPEG", progressive=True,
                  subsampling=0, quality=50)
    last = data.rindex(b"\xff\xda")
    return data[:-2] + data[last:-2] * extra_scans + b"\xff\xd9"


def test_a_normal_progressive_jpeg_is_read():
    data = progressive_jpeg((3000, 2000))
    assert data.count(b"\xff\xda") >= 6
    assert decode_image(data, 25_000_000).size == (1500, 1000)  # reduced when decoded, then averaged to MAX_SIDE


def test_too_many_jpeg_scans_are_refused_before_decoding():
    data = progressive_jpeg(extra_scans=100)
    assert decode_image(progressive_jpeg(extra_scans=80), LIMIT).size == (64, 64)  # repeats below the ceiling still read
    with pytest.raises(ImageError, match="more than 100 JPEG scans") as caught:
        decode_image(data, LIMIT)
    assert caught.value.status == 400


def test_too_many_jpeg_segments_are_refused_before_decoding():
    data = encode(Image.new("RGB", (32, 32), "white"), "JPEG")
    with pytest.raises(ImageError, match="more than 256 JPEG segments"):
        decode_image(data[:2] + b"\xff\xe3\x00\x02" * 300 + data[2:], LIMIT)
    assert decode_image(data[:2] + b"\xff\xe3\x00\x02" * 200 + data[2:], LIMIT).size == (32, 32)


def test_too_many_png_chunks_are_refused_before_decoding():
    data = encode(Image.new("RGB", (32, 32), "white"), "PNG")
    chunk = struct.pack(">I", 0) + b"prIv" + struct.pack(">I", zlib.crc32(b"prIv"))
    with pytest.raises(ImageError, match="more than 20,000 PNG chunks"):
        decode_image(data[:33] + chunk * 20_001 + data[33:], LIMIT)  # 33: signature and IHDR
    assert decode_image(data[:33] + chunk * 1_000 + data[33:], LIMIT).size == (32, 32)


def test_a_gif_of_comment_blocks_is_refused_before_decoding():
    data = encode(Image.new("L", (32, 32), 255), "GIF")
    image_start = data.index(b",")
    comments = b"!\xfe" + b"\x01c" * 5_000 + b"\x00"  # one comment in 5,000 one-byte sub-blocks
    with pytest.raises(ImageError, match="more than 4,096 GIF blocks"):
        decode_image(data[:image_start] + comments + data[image_start:], LIMIT)
    short = b"!\xfe" + b"\x01c" * 100 + b"\x00"
    assert decode_image(data[:image_start] + short + data[image_start:], LIMIT).size == (32, 32)


def test_a_large_webp_is_refused_before_decoding():
    # 1 kB of lossless WebP at 5,000x5000 took a worker to 468 MB: libwebp holds the picture several times.
    data = encode(Image.new("RGB", (4000, 3000), "white"), "WEBP", quality=10)
    with pytest.raises(ImageError, match="WebP is read whole") as caught:
        decode_image(data, 25_000_000)
    assert caught.value.status == 413


def test_a_large_progressive_cmyk_jpeg_is_refused_before_decoding():
    # libjpeg keeps 4 channels x 2 bytes of coefficients per pixel at full size: 200 MB at 25 megapixels.
    data = progressive_jpeg((5000, 5000), "CMYK")
    with pytest.raises(ImageError, match="stored progressively") as caught:
        decode_image(data, 25_000_000)
    assert caught.value.status == 413


def test_a_wide_jpeg_strip_is_decoded_at_reduced_scale(monkeypatch):
    # Asking for 1,024 pixels on both sides left a 20,000x200 strip at full size (65,500x381: +193 MB).
    from PIL import JpegImagePlugin

    loaded = []
    load = JpegImagePlugin.JpegImageFile.load
    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", lambda self: (loaded.append(self.size), load(self))[1])
    image = decode_image(encode(Image.new("RGB", (20_000, 200), "white"), "JPEG"), 25_000_000)
    assert loaded[0] == (2_500, 25) and image.size == (1_250, 13)  # decoded at 1/8, then averaged
    assert image.info["original_size"] == (20_000, 200)


def test_a_short_exif_block_is_no_orientation_and_no_error():
    # Pillow's EXIF reader raised struct.error on these (a 500 once); the picture itself is sound.
    for fmt, exif in (("PNG", b"II*\x00"), ("WEBP", b"MM"), ("PNG", b"II*\x00\x08\x00\x00")):
        assert decode_image(encode(Image.new("RGB", (60, 40), "white"), fmt, exif=exif), LIMIT).size == (60, 40), fmt


def segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def jpeg_a_channel_per_scan(width: int, height: int, channels: int) -> bytes:
    """A baseline JPEG (all coefficients 0) whose every scan holds one channel: libjpeg then keeps the
    whole picture's coefficients, as for a progressive one. Pillow cannot write such a file."""
    one_code = b"\x01" + b"\x00" * 15 + b"\x00"  # a Huffman table of one 1-bit code, for the value 0
    data = b"\xff\xd8" + (segment(0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x00") if channels == 4 else b"")
    data += segment(0xDB, b"\x00" + b"\x01" * 64)
    data += segment(0xC0, bytes([8]) + struct.pack(">HH", height, width) + bytes([channels])
                    + b"".join(bytes([c + 1, 0x11, 0]) for c in range(channels)))
    data += segment(0xC4, b"\x00" + one_code) + segment(0xC4, b"\x10" + one_code)
    blocks = -(-width // 8) * -(-height // 8)
    for c in range(channels):  # each block: DC difference 0 and end-of-block, 2 bits
        data += segment(0xDA, bytes([1, c + 1, 0x00, 0x00, 0x3F, 0x00])) + b"\x00" * -(-2 * blocks // 8)
    return data + b"\xff\xd9"


def test_a_large_jpeg_scanned_a_channel_at_a_time_is_refused_like_a_progressive_one():
    assert decode_image(jpeg_a_channel_per_scan(64, 48, 3), LIMIT).size == (64, 48)  # a real, readable file
    with pytest.raises(ImageError, match="stored progressively") as caught:
        decode_image(jpeg_a_channel_per_scan(5000, 5000, 4), 25_000_000)  # 200 MB of coefficients
    assert caught.value.status == 413


def test_junk_between_segments_hides_no_part():
    # Pillow and libjpeg step over bytes between a JPEG's segments, and Pillow over any byte before a
    # GIF's first image: a junk byte once ended the count there, letting through what it should refuse.
    jpeg = progressive_jpeg(extra_scans=150)
    app0_end = 4 + int.from_bytes(jpeg[4:6], "big")
    with pytest.raises(ImageError, match="JPEG scans"):
        decode_image(jpeg[:app0_end] + b"\x00" + jpeg[app0_end:], LIMIT)
    baseline = encode(Image.new("RGB", (32, 32), "white"), "JPEG")
    head, tail = baseline[:app0_end], baseline[app0_end:]  # Pillow knows a JPEG by its first segment
    with pytest.raises(ImageError, match="JPEG segments"):
        decode_image(head + b"\x00" + b"\xff\xe3\x00\x02" * 300 + tail, LIMIT)
    with pytest.raises(ImageError, match="JPEG junk bytes"):
        decode_image(head + b"\x00" * 70_000 + tail, LIMIT)
    with pytest.raises(ImageError, match="JPEG junk bytes"):
        decode_image(head + b"\xff" * 70_000 + tail, LIMIT)  # fill bytes, read one at a time too
    assert decode_image(head + b"\x00" * 10 + tail, LIMIT).size == (32, 32)
    gif = encode(Image.new("L", (32, 32), 255), "GIF")
    image_start = gif.index(b",")
    for filler in (b"!\xfe\x00" * 5_000, b"\x00" * 5_000):  # empty comments; bytes that are no block at all
        with pytest.raises(ImageError, match="GIF blocks"):
            decode_image(gif[:image_start] + filler + gif[image_start:], LIMIT)


def test_what_follows_a_jpeg_is_not_counted():
    # Phones append a video to a "motion photo"; random bytes hold an FF DA every 65,536 or so.
    photo = encode(Image.new("RGB", (64, 48), "white"), "JPEG")
    trailer = b"\xff\xda\x00\x08" * 1_000
    assert decode_image(photo + trailer, LIMIT).size == (64, 48)


def test_bare_markers_before_the_first_scan_are_counted_as_pillow_reads_them():
    # Pillow reads restart, start- and end-of-image markers and stuffed bytes in its header loop two
    # bytes at a time (an end of image there does not stop it): none may hide from the count.
    baseline = encode(Image.new("RGB", (32, 32), "white"), "JPEG")
    for bare in (b"\xff\xd0", b"\xff\xd8", b"\xff\xd9", b"\xff\x00"):
        with pytest.raises(ImageError, match="JPEG junk bytes"):
            decode_image(baseline[:2] + bare * 40_000 + baseline[2:], LIMIT)
    assert decode_image(baseline[:2] + b"\xff\xd0" * 5 + baseline[2:], LIMIT).size == (32, 32)


def test_a_stuffed_byte_cannot_jump_over_a_progressive_frame():
    # FF 00 has no length: read as a segment's, its next two bytes could skip the frame's header.
    data = progressive_jpeg((300, 200))
    first_scan = data.index(b"\xff\xda")
    hidden = data[:2] + b"\xff\x00" + (first_scan + 4 - 4).to_bytes(2, "big") + data[2:]
    assert parts.count(hidden).whole_coefficients and parts.count(data).whole_coefficients
    assert decode_image(hidden, LIMIT).size == (300, 200)  # Pillow and libjpeg step over it too


def test_a_gif_extension_read_as_pillow_reads_it_hides_no_comments():
    # Pillow reads an extension's first sub-block, then a chain up to an empty one: an empty first
    # sub-block makes it read on into what follows as sub-blocks.
    gif = encode(Image.new("P", (64, 48), 1), "GIF")
    start = 13 + (3 << ((gif[10] & 7) + 1) if gif[10] & 0x80 else 0)
    comments = b"!\xfe\x00" * 5_000
    desync = b"!\x01\x00" + b"\x2c" + b"A" * 44 + b"\x00"  # 2C: a sub-block's size to Pillow, not an image
    with pytest.raises(ImageError, match="GIF blocks"):
        decode_image(gif[:start] + desync + comments + gif[start:], LIMIT)
    assert decode_image(gif[:start] + desync + gif[start:], LIMIT).size == (64, 48)


def asymmetric(size=(40, 24)) -> Image.Image:
    """A picture no turn or flip leaves as it was: each quarter a different grey."""
    pixels = np.zeros(size[::-1], np.uint8)
    pixels[: size[1] // 2, : size[0] // 2], pixels[: size[1] // 2, size[0] // 2:] = 40, 90
    pixels[size[1] // 2:, : size[0] // 2], pixels[size[1] // 2:, size[0] // 2:] = 160, 230
    return Image.fromarray(pixels).convert("RGB")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("value", range(1, 9))
def test_every_orientation_turns_the_picture_as_pillow_does(fmt, value):
    from PIL import ImageOps

    exif = Image.Exif()
    exif[0x0112] = value
    data = encode(asymmetric(), fmt, exif=exif, **({"lossless": True} if fmt == "WEBP" else {}))
    with Image.open(io.BytesIO(data)) as stored:
        expected = np.asarray(ImageOps.exif_transpose(stored.convert("RGB")), np.int16)
    ours = decode_image(data, LIMIT)
    assert ours.size == expected.shape[1::-1] and ours.info["original_size"] == ours.size
    assert np.abs(np.asarray(ours, np.int16) - expected).max() <= 2  # JPEG decodes a grey a level apart


def test_an_orientation_in_the_xmp_alone_is_followed():
    xmp = b'<x:xmpmeta><rdf:Description tiff:Orientation="6"/></x:xmpmeta>'
    data = encode(asymmetric(), "JPEG", xmp=xmp)
    assert decode_image(data, LIMIT).size == (24, 40)


def test_an_exif_block_of_entries_sharing_their_bytes_costs_nothing_to_read(monkeypatch):
    # Thousands of entries each claiming most of the block: Pillow's getexif() copies each one
    # (gigabytes from a 9 MB PNG), and exif_transpose then rewrote them all (46 s from 66 kB).
    total, entries = 2_000_000, 300
    block = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", entries + 1)
    block += b"".join(struct.pack("<HHII", 0x9000 + i, 7, total - 1, 1) for i in range(entries))
    block += struct.pack("<HHIHH", 0x0112, 3, 1, 6, 0) + b"\0" * 4
    block += b"\0" * (total - len(block))
    data = encode(asymmetric(), "PNG", exif=block)

    def copies_every_entry(self):
        raise AssertionError("Pillow's EXIF reader was called: 300 entries x 2 MB, 600 MB of copies")

    monkeypatch.setattr(Image.Image, "getexif", copies_every_entry)
    assert decode_image(data, LIMIT).size == (24, 40)  # turned by its orientation, found among them


def shared_bytes_block(entries: int, total: int, kind: int = 7, endian: str = "<") -> bytes:
    """A TIFF block whose entries all point at (nearly) the whole block."""
    order = b"II*\x00" if endian == "<" else b"MM\x00*"
    block = order + struct.pack(endian + "I", 8) + struct.pack(endian + "H", entries)
    unit = {3: 2, 7: 1}[kind]
    block += b"".join(struct.pack(endian + "HHII", 0x9000 + i, kind, (total - 2) // unit, 2) for i in range(entries))
    return block + b"\0" * (total - len(block))


def test_jpeg_metadata_pillow_copies_at_open_is_bounded():
    # Pillow reads a JPEG's EXIF (for its resolution) and MPO index as it opens it, copying each entry.
    photo = encode(Image.new("RGB", (32, 32), "white"), "JPEG")
    app1 = b"\xff\xe1" + struct.pack(">H", 2 + 6 + 65_000) + b"Exif\x00\x00" + shared_bytes_block(1_000, 65_000)
    app2 = b"\xff\xe2" + struct.pack(">H", 2 + 4 + 65_000) + b"MPF\x00" + shared_bytes_block(1_000, 65_000, 3, ">")
    for segment in (app1, app2):
        with pytest.raises(ImageError, match="JPEG metadata bytes"):
            decode_image(photo[:2] + segment + photo[2:], LIMIT)
    # A real EXIF block (its values side by side) is read.
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "Maker" * 100, "Model" * 100, 6
    assert decode_image(encode(Image.new("RGB", (32, 16), "white"), "JPEG", exif=exif), LIMIT).size == (16, 32)


def test_a_deep_full_colour_transparent_heic_has_a_lower_ceiling():
    # 10 bits, 4:4:4, alpha: libheif holds some 20 bytes a pixel (a 25-megapixel one took a worker to 573 MB).
    import pillow_heif

    def heic(size, chroma, deep):
        pixels = np.zeros((size[1], size[0], 4), np.uint16 if deep else np.uint8)
        picture = pillow_heif.from_bytes("RGBA;16" if deep else "RGBA", size, pixels.tobytes())
        buffer = io.BytesIO()
        picture.save(buffer, quality=10, chroma=chroma)
        return buffer.getvalue()

    with pytest.raises(ImageError, match="at 10 bits, full colour, with transparency") as caught:
        decode_image(heic((3200, 3000), 444, True), 25_000_000)  # 9.6 megapixels: over 180 MB
    assert caught.value.status == 413
    assert decode_image(heic((400, 300), 444, True), 25_000_000).size == (400, 300)


def exif_block(entries: list[tuple[int, int, int, bytes]], header: bytes = b"II*\x00", extra: bytes = b"") -> bytes:
    """A little-endian TIFF block: entries (tag, type, count, 4 bytes of value or offset), then `extra`."""
    block = header + struct.pack("<I", 8) + struct.pack("<H", len(entries))
    block += b"".join(struct.pack("<HHI", tag, kind, count) + value for tag, kind, count, value in entries)
    return block + b"\0\0\0\0" + extra


SIX = struct.pack("<HH", 6, 0)


ODD_EXIF = [
    ("odd header", exif_block([(0x0112, 3, 1, SIX)], header=b"II\x00\x2a"), None),
    ("tag twice, the first wins", exif_block([(0x0112, 3, 1, SIX), (0x0112, 3, 1, struct.pack("<HH", 1, 0))]), None),
    ("tag twice, the first read wins", exif_block([(0x0112, 3, 0, SIX), (0x0112, 3, 1, SIX),
                                                    (0x0112, 3, 1, struct.pack("<HH", 1, 0))]), None),
    ("count 0: missing, so the XMP", exif_block([(0x0112, 3, 0, SIX)]), b'<x tiff:Orientation="6"/>'),
    ("unknown type: missing", exif_block([(0x0112, 99, 1, SIX)]), b'<x tiff:Orientation="8"/>'),
    ("value outside the block", exif_block([(0x0112, 5, 1, struct.pack("<I", 5_000))]), b'<x tiff:Orientation="3"/>'),
    ("a rational 6/1", exif_block([(0x0112, 5, 1, struct.pack("<I", 26))], extra=struct.pack("<II", 6, 1)), None),
    ("a float 6.0", exif_block([(0x0112, 11, 1, struct.pack("<f", 6.0))]), None),
    ("two values: the first", exif_block([(0x0112, 3, 2, struct.pack("<HH", 6, 1))]), b'<x tiff:Orientation="3"/>'),
    ("text", exif_block([(0x0112, 2, 2, b"6\x00\x00\x00")]), b'<x tiff:Orientation="3"/>'),
    ("a byte: bytes to Pillow", exif_block([(0x0112, 1, 1, b"\x06\x00\x00\x00")]), None),
    ("an IFD pointer: a long", exif_block([(0x0112, 13, 1, struct.pack("<I", 6))]), None),
    ("type 17: skipped", exif_block([(0x0112, 17, 1, struct.pack("<I", 6))]), b'<x tiff:Orientation="3"/>'),
    ("an entry larger than the block: skipped", exif_block([(0x010F, 2, 9_000, struct.pack("<I", 8)),
                                                           (0x0112, 3, 1, SIX)]), b'<x tiff:Orientation="3"/>'),
    ("an entry past the block's end first: the rest unread", exif_block([(0x010F, 2, 8, struct.pack("<I", 5_000)),
                                                                        (0x0112, 3, 1, SIX)]), b'<x tiff:Orientation="3"/>'),
    ("values together larger than the block: the rest skipped",  # 30 + 30 + 8 bytes from a block of 58
     exif_block([(0x010F, 2, 30, struct.pack("<I", 8)), (0x0110, 2, 30, struct.pack("<I", 8)),
                 (0x0112, 5, 1, struct.pack("<I", 50))], extra=struct.pack("<II", 6, 1)), b'<x tiff:Orientation="3"/>'),
    ("MM 00 2B: classic to Pillow", b"MM\x00\x2b" + struct.pack(">I", 8) + struct.pack(">H", 1)
     + struct.pack(">HHIHH", 0x0112, 3, 1, 6, 0) + b"\0" * 4, None),
]


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's own about the odd blocks
@pytest.mark.parametrize("name, block, xmp", ODD_EXIF, ids=[name for name, _, _ in ODD_EXIF])
def test_odd_exif_blocks_turn_the_picture_as_pillow_does(name, block, xmp):
    from PIL import ImageOps

    data = encode(asymmetric(), "PNG", exif=block)
    if xmp is not None:
        from PIL import PngImagePlugin
        text = PngImagePlugin.PngInfo()
        text.add_itxt("XML:com.adobe.xmp", xmp.decode())
        data = encode(asymmetric(), "PNG", exif=block, pnginfo=text)
    with Image.open(io.BytesIO(data)) as stored:
        expected = ImageOps.exif_transpose(stored.convert("RGB"))
    assert np.array_equal(np.asarray(decode_image(data, LIMIT)), np.asarray(expected)), name


def test_exif_segments_are_counted_joined_as_pillow_joins_them():
    # The first segment holds only the header; the directory, in the next ones, points at all of them.
    photo = encode(Image.new("RGB", (32, 32), "white"), "JPEG")
    entries = b"".join(struct.pack("<HHII", 0x9000 + i, 7, 60_000, 0) for i in range(40))
    directory = struct.pack("<H", 40) + entries + b"\0" * 4
    first = b"Exif\x00\x00" + b"II*\x00" + struct.pack("<I", 8)  # the directory starts in the next segment
    rest = [directory] + [b"\0" * 60_000] * 2

    def app1(body):
        return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body
    data = photo[:2] + app1(first) + b"".join(app1(b"Exif\x00\x00" + body) for body in rest) + photo[2:]
    with pytest.raises(ImageError, match="JPEG metadata bytes"):
        decode_image(data, LIMIT)


@pytest.mark.parametrize("header", [b"II\x00\x2a", b"MM\x2a\x00", b"MM\x00\x2b"], ids=["II 00 2A", "MM 2A 00", "MM 00 2B"])
def test_an_mpo_index_under_a_header_pillow_tolerates_is_counted_too(header):
    photo = encode(Image.new("RGB", (32, 32), "white"), "JPEG")
    endian = "<" if header.startswith(b"II") else ">"
    block = header + struct.pack(endian + "I", 8) + struct.pack(endian + "H", 2_000)
    block += b"".join(struct.pack(endian + "HHII", 0xB000 + i, 3, 16_000, 8) for i in range(2_000))
    block += b"\0" * (32_004 - len(block) % 2)
    app2 = b"\xff\xe2" + struct.pack(">H", len(block) + 6) + b"MPF\x00" + block[:65_000]
    with pytest.raises(ImageError, match="JPEG metadata bytes"):
        decode_image(photo[:2] + app2 + photo[2:], LIMIT)


def test_png_compressed_chunks_and_text_are_bounded():
    import zlib as z

    picture = encode(Image.new("RGB", (32, 32), "white"), "PNG")

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", z.crc32(kind + body))
    megabyte = z.compress(b"\0" * 1_000_000, 9)
    iccp = chunk(b"iCCP", b"icc\x00\x00" + megabyte)
    with pytest.raises(ImageError, match="PNG compressed chunks"):
        decode_image(picture[:33] + iccp * 65 + picture[33:], LIMIT)  # each inflated in Python: 25 s for 9,400
    ztxt = chunk(b"zTXt", b"note\x00\x00" + megabyte)
    with pytest.raises(ImageError):  # 5 MB of text kept while decoding: over Pillow's allowance, set to 4 MB
        decode_image(picture[:33] + ztxt * 5 + picture[33:], LIMIT)
    assert decode_image(picture[:33] + ztxt * 2 + iccp + picture[33:], LIMIT).size == (32, 32)


def test_a_raw_exif_profile_in_png_text_is_read_without_splitting_it():
    from app.exif import raw_profile

    block = exif_block([(0x0112, 3, 1, SIX)])
    text = "\nexif\n" + f"{len(block):8d}\n" + "\n".join(block.hex()[i:i + 72] for i in range(0, len(block) * 2, 72))
    assert raw_profile(text) == block
    assert raw_profile("\n" * 3_000_000) is None  # once split into 3 million lines (+135 MB)
    from PIL import PngImagePlugin
    info = PngImagePlugin.PngInfo()
    info.add_text("Raw profile type exif", text)
    assert decode_image(encode(asymmetric(), "PNG", pnginfo=info), LIMIT).size == (24, 40)


def test_run_length_bmp_is_refused_unread():
    # Pillow decodes RLE BMP in Python, a step a run: a 21 kB file took 5.4 s. Browsers write none.
    width, height = 64, 32
    rows = b"".join(b"\x01\x00" + b"\x00\x00" for _ in range(height)) + b"\x00\x01"  # a pixel, end of line
    header = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(rows), 2835, 2835, 256, 0)
    palette = b"\0\0\0\0" * 256
    offset = 14 + len(header) + len(palette)
    data = b"BM" + struct.pack("<IHHI", offset + len(rows), 0, 0, offset) + header + palette + rows
    assert status_of(data) == 415


def test_a_large_animated_png_is_refused_before_pillow_opens_it():
    # Opening it fills a second picture of its size (+100 MB at 25 megapixels) before any check after open.
    frames = [Image.new("RGBA", (4000, 3200), (0, 0, 0, 0)), Image.new("RGBA", (4000, 3200), (0, 0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "PNG", save_all=True, append_images=frames[1:], disposal=1)
    with pytest.raises(ImageError, match="animated PNG") as caught:
        decode_image(buffer.getvalue(), 25_000_000)
    assert caught.value.status == 413
    small = io.BytesIO()
    frames[0].resize((40, 32)).save(small, "PNG", save_all=True, append_images=[frames[1].resize((40, 32))])
    assert decode_image(small.getvalue(), LIMIT).size == (40, 32)


# ---------- HEIF: what pillow_heif copies per image, and pictures larger than the photo ----------

def box(kind: bytes, payload: bytes, full: bool = False) -> bytes:
    payload = (b"\0\0\0\0" if full else b"") + payload
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def heif_file(extents: dict[int, list[tuple[int, int]]], described: list[tuple[int, list[int]]] = (),
              properties: list[bytes] = (), associations: dict[int, list[int]] = None, padding: int = 0) -> bytes:
    """A HEIF container (no decodable picture): items' extents (offset, length), cdsc references,
    ipco properties and each item's property indices."""
    iloc = struct.pack(">BBH", 0x44, 0x00, len(extents)) + b"".join(
        struct.pack(">HHH", item, 0, len(spans)) + b"".join(struct.pack(">II", o, n) for o, n in spans)
        for item, spans in extents.items())
    iref = box(b"iref", b"".join(box(b"cdsc", struct.pack(">HH", source, len(targets))
                                     + b"".join(struct.pack(">H", t) for t in targets)) for source, targets in described), full=True)
    associations = associations or {}
    ipma = struct.pack(">I", len(associations)) + b"".join(
        struct.pack(">HB", item, len(indices)) + bytes(indices) for item, indices in associations.items())
    iprp = box(b"iprp", box(b"ipco", b"".join(properties)) + box(b"ipma", ipma, full=True))
    meta = box(b"meta", box(b"iloc", iloc, full=True) + iref + iprp, full=True)
    return box(b"ftyp", b"heic\0\0\0\0mif1heic") + meta + box(b"mdat", b"\0" * padding)


def test_heif_items_claiming_the_same_bytes_are_refused():
    # One EXIF item of 32 extents over the same 100 kB: pillow_heif copies all of them for each image.
    spans = [(1_000, 100_000)] * 32
    data = heif_file({1: [(0, 1_000)], 2: spans}, [(2, [1])], padding=110_000)
    with pytest.raises(ImageError, match="HEIF bytes claimed twice"):
        decode_image(data, LIMIT)
    assert parts.count(heif_file({1: [(0, 1_000)], 2: [(1_000, 100_000)]}, [(2, [1])], padding=110_000)).over() is None


def test_heif_metadata_described_for_many_images_is_refused():
    # A 100 kB EXIF item described for 200 images: copied once per image (20 MB).
    items = {i: [(0, 10)] for i in range(1, 201)} | {500: [(1_000, 100_000)]}
    data = heif_file(items, [(500, list(range(1, 201)))], padding=110_000)
    with pytest.raises(ImageError, match="HEIF metadata bytes copied"):
        decode_image(data, LIMIT)
    # A large colour profile shared by many images: the same.
    profile = box(b"colr", b"prof" + b"\0" * 1_000_000)
    shared = heif_file({i: [(0, 10)] for i in range(1, 21)}, properties=[profile],
                       associations={i: [1] for i in range(1, 21)}, padding=100)
    with pytest.raises(ImageError, match="HEIF metadata bytes copied"):
        decode_image(shared, LIMIT)


def test_a_heif_picture_larger_than_the_limit_is_refused_whatever_the_photo_s_size():
    # A 64x64 photo with an 11,900x11,900 alpha plane: libheif decodes both (+345 MB from 30 kB).
    ispe = [box(b"ispe", struct.pack(">II", 64, 64), full=True), box(b"ispe", struct.pack(">II", 11_900, 11_900), full=True)]
    data = heif_file({1: [(0, 10)], 2: [(10, 10)]}, properties=ispe, associations={1: [1], 2: [2]}, padding=100)
    with pytest.raises(ImageError, match="141,610,000 pixels") as caught:
        decode_image(data, 25_000_000)
    assert caught.value.status == 413


def test_too_many_heif_items_are_refused_before_they_are_walked():
    data = heif_file({i: [(0, 1)] for i in range(1, 5_000)}, padding=10)
    with pytest.raises(ImageError, match="HEIF items"):
        decode_image(data, LIMIT)


def test_a_heif_box_that_belongs_once_and_comes_twice_is_refused():
    # libheif reads the first iloc and ipco but the last meta: a decoy would be what the walk counted.
    good = heif_file({1: [(0, 10)]}, padding=100)
    meta = good[good.index(b"meta") - 4:good.index(b"mdat") - 4]
    twice = good[:good.index(b"mdat") - 4] + meta + good[good.index(b"mdat") - 4:]
    with pytest.raises(ImageError, match="HEIF boxes where one belongs"):
        decode_image(twice, LIMIT)
    empty = box(b"meta", b"", full=True)  # an empty second meta is as bad
    with pytest.raises(ImageError, match="HEIF boxes where one belongs"):
        decode_image(good[:good.index(b"mdat") - 4] + empty + good[good.index(b"mdat") - 4:], LIMIT)


def test_heif_walk_slips_are_400s_and_its_boxes_are_bounded():
    ftyp = box(b"ftyp", b"heic\0\0\0\0mif1heic")
    for empty in (b"iloc", b"iref"):  # a box with no payload at the end of the file
        assert status_of(ftyp + box(b"meta", box(empty, b""), full=True)) == 400
    many = box(b"meta", box(b"iprp", box(b"ipco", box(b"free", b"") * 12_000)), full=True)
    with pytest.raises(ImageError, match="HEIF boxes"):
        decode_image(ftyp + many, LIMIT)


def test_heif_auxiliary_types_and_entity_groups_are_bounded():
    aux = box(b"auxC", b"urn:" + b"x" * 2_000, full=True)
    with pytest.raises(ImageError, match="HEIF auxiliary type bytes"):
        decode_image(heif_file({1: [(0, 10)]}, properties=[aux], associations={1: [1]}, padding=100), LIMIT)
    group = box(b"altr", struct.pack(">II", 1, 64) + b"".join(struct.pack(">I", i) for i in range(64)), full=True)
    data = heif_file({i: [(0, 1)] for i in range(1, 1_001)}, padding=10)
    at = data.index(b"meta") - 4  # 100 groups of 64 go inside meta, after its other boxes
    meta_size, grpl = int.from_bytes(data[at:at + 4], "big"), box(b"grpl", group * 100)
    grouped = data[:at] + struct.pack(">I", meta_size + len(grpl)) + data[at + 4:at + meta_size] + grpl + data[at + meta_size:]
    with pytest.raises(ImageError, match="HEIF entity group copies"):
        decode_image(grouped, LIMIT)


def test_a_heic_is_judged_by_the_largest_picture_it_codes_not_the_size_it_shows():
    # A crop (clap) to 1,000x1,000 of a 25-megapixel 10-bit 4:4:4 transparent picture: libheif decodes
    # it whole, then crops (389 MB). The container's largest ispe is what counts.
    import pillow_heif
    from app.images import refuse_costly

    pixels = np.zeros((300, 400, 4), np.uint16)
    buffer = io.BytesIO()
    pillow_heif.from_bytes("RGBA;16", (400, 300), pixels.tobytes()).save(buffer, quality=10, chroma=444)
    with Image.open(io.BytesIO(buffer.getvalue())) as shown_small:
        assert refuse_costly(shown_small, 25_000_000, parts.count(buffer.getvalue())) == 0
        coded_large = parts.Parts({}, largest_item_pixels=25_000_000)
        with pytest.raises(ImageError, match="HEIC") as caught:
            refuse_costly(shown_small, 25_000_000, coded_large)
    assert caught.value.status == 413


def test_webp_metadata_chunks_are_bounded():
    exif = Image.Exif()
    exif[0x010E] = "x" * 1_200_000  # a 1.2 MB description: Pillow copies the chunk while decoding
    with pytest.raises(ImageError, match="WebP metadata bytes"):
        decode_image(encode(Image.new("RGB", (32, 32), "white"), "WEBP", exif=exif.tobytes()), LIMIT)
    small = Image.Exif()
    small[0x0112] = 6
    assert decode_image(encode(Image.new("RGB", (32, 16), "white"), "WEBP", exif=small.tobytes()), LIMIT).size == (16, 32)


def test_a_lossless_jpeg_is_refused_before_pillow_sees_it():
    # libjpeg-turbo decodes lossless JPEG at full size into the buffer Pillow shrank for a reduced
    # scale: a 2,100-pixel one crashed the worker (double free). No camera or browser writes them.
    frame = segment(0xC3, bytes([8]) + struct.pack(">HH", 2100, 2100) + bytes([1, 1, 0x11, 0]))
    data = b"\xff\xd8" + segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00") + frame + b"\xff\xd9"
    with pytest.raises(ImageError, match="lossless or hierarchical") as caught:
        decode_image(data, 25_000_000)
    assert caught.value.status == 415


def test_lossless_webp_is_read_only_small():
    # libwebp builds tables for up to 65,536 Huffman groups: 880 MB from a 2 MB file of 1 megapixel.
    with pytest.raises(ImageError, match="lossless") as caught:
        decode_image(encode(Image.new("RGB", (400, 300), "white"), "WEBP", lossless=True), LIMIT)
    assert caught.value.status == 413
    transparent = encode(Image.new("RGBA", (400, 300), (255, 255, 255, 0)), "WEBP", quality=80)  # alpha: lossless
    assert status_of(transparent) == 413
    assert decode_image(encode(Image.new("RGB", (300, 300), "white"), "WEBP", lossless=True), LIMIT).size == (300, 300)
    assert decode_image(encode(Image.new("RGB", (800, 600), "white"), "WEBP", quality=80), LIMIT).size == (800, 600)


def test_a_picture_of_too_many_rows_is_refused():
    # Pillow keeps an 8-byte pointer per row of each copy: a 1x25,000,000 PNG took +437 MB.
    assert status_of(encode(Image.new("1", (1, 70_000)), "PNG"), 25_000_000) == 413
    assert decode_image(encode(Image.new("L", (1, 60_000)), "PNG"), 25_000_000).size[1] <= 2048
