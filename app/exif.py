"""The orientation a photo asks to be shown in, read from its first EXIF directory alone (or from
its XMP), as Pillow's ImageOps.exif_transpose would read it.

Not Pillow's getexif(): it copies out every entry's value first, and a 66 kB EXIF block of
thousands of entries all pointing at the same bytes took a worker to gigabytes; exif_transpose then
rewrites the whole block (46 s for one such photo). Here only the one tag is looked at.
"""
from __future__ import annotations

import re
import struct

from PIL import Image

ORIENTATION = 0x0112
# What each orientation asks for, as ImageOps.exif_transpose turns it.
TURNS = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
         5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
         8: Image.Transpose.ROTATE_90}
QUARTER_TURNS = {Image.Transpose.TRANSPOSE, Image.Transpose.ROTATE_270, Image.Transpose.TRANSVERSE,
                 Image.Transpose.ROTATE_90}
# TIFF value types Pillow reads: (bytes per value, struct format of one value, or None for a value no
# orientation equals: text, raw bytes, another directory's offset).
# (Pillow gives BYTE values as bytes, reads an IFD pointer as a LONG, and skips types 17 and 18.)
TYPES = {1: (1, None), 2: (1, None), 3: (2, "H"), 4: (4, "I"), 5: (8, "II"), 6: (1, "b"), 7: (1, None), 8: (2, "h"),
         9: (4, "i"), 10: (8, "ii"), 11: (4, "f"), 12: (8, "d"), 13: (4, "I"), 16: (8, "Q")}
# The headers Pillow reads a classic directory under: it takes a block for BigTIFF by its third byte
# alone, so MM 00 2B is classic to it, and II 2B 00 (BigTIFF) fails to load in an 8-byte header.
HEADERS = {b"MM\x00\x2a": ">", b"II\x2a\x00": "<", b"MM\x2a\x00": ">", b"II\x00\x2a": "<", b"MM\x00\x2b": ">"}
XMP = r'tiff:Orientation(="|>)([0-9])'  # Pillow's own pattern
RAW_PROFILE_LARGEST = 2_000_000  # hex characters: a PNG's "Raw profile type exif" text (EXIF is 64 kB in a JPEG)


def orientation(image: Image.Image) -> int:
    """1 (as it is) to 8, as Image.getexif() would give it; 1 when there is none, 0 when the tag
    holds something exif_transpose turns nothing for."""
    info = image.info
    block = info.get("exif")
    if block is None and isinstance(info.get("Raw profile type exif"), str):
        block = raw_profile(info["Raw profile type exif"])
    if isinstance(block, bytes):
        while block.startswith(b"Exif\x00\x00"):
            block = block[6:]
        found = first_directory_tag(block, ORIENTATION)
        if found is not None:
            return found
    xmp = info.get("XML:com.adobe.xmp") or info.get("xmp")
    if isinstance(xmp, (str, bytes)):
        match = re.search(XMP if isinstance(xmp, str) else XMP.encode(), xmp)
        if match:
            return int(match[2])
    return 1


def raw_profile(text: str) -> bytes | None:
    """The EXIF block of ImageMagick's PNG text: a header of three lines, then hex."""
    start = -1
    for _ in range(3):
        start = text.find("\n", start + 1)
        if start < 0:
            return None
    if len(text) - start > RAW_PROFILE_LARGEST:
        return None
    try:
        return bytes.fromhex(text[start + 1:])  # fromhex steps over the line breaks
    except ValueError:
        return None


def directory(block: bytes):
    """(endian, entries) of a TIFF block's first directory, each entry (tag, type, count, 4 bytes
    holding its value when it fits, else its offset); None for no TIFF block Pillow reads."""
    endian = HEADERS.get(block[:4])
    if endian is None or len(block) < 8:
        return None
    (start,) = struct.unpack_from(endian + "I", block, 4)
    if start + 2 > len(block):
        return None
    (count,) = struct.unpack_from(endian + "H", block, start)
    table = block[start + 2:start + 2 + 12 * count]
    return endian, struct.iter_unpack(endian + "HHI4s", table[:len(table) - len(table) % 12])


def copied_bytes(block: bytes) -> int:
    """The bytes Pillow copies out of a TIFF block's first directory when it reads it: each value
    that does not fit in its entry, however many entries point at the same bytes."""
    found = directory(block)
    if found is None:
        return 0
    _, entries = found
    sizes = (TYPES[kind][0] * count for _, kind, count, _ in entries if kind in TYPES)
    return sum(size for size in sizes if size > 4)


def first_directory_tag(block: bytes, wanted: int) -> int | float | None:
    """The value of tag `wanted` in a TIFF block's first directory, as Pillow (13) reads it: None when
    absent or unreadable (Pillow skips such entries); the first entry kept wins; 0 for a value that equals
    no orientation (text, raw bytes)."""
    read = directory(block)
    if read is None:
        return None
    endian, entries = read
    kept = set()  # Pillow keeps a tag's first readable entry and passes over any later one
    elsewhere = 0  # bytes of the values stored away from their entries, so far
    for tag, kind, count, data in entries:
        if tag in kept or kind not in TYPES:
            continue
        unit, value_format = TYPES[kind]
        source, at_value = data, 0
        if unit * count > 4:  # the value lies elsewhere in the block
            source, at_value = block, struct.unpack_from(endian + "I", data)[0]
            elsewhere += unit * count
            if elsewhere > len(block):
                continue  # more than the block holds, whatever the offsets: Pillow skips the entry
            if at_value + unit * count > len(block):
                return None  # Pillow stops reading the directory at a value it cannot read, whatever its tag
        if count == 0:
            continue
        kept.add(tag)
        if tag != wanted:
            continue
        if value_format is None:
            return 0  # text or raw bytes: exif_transpose finds no turn for it
        # Several values: Pillow keeps the first, the orientation being defined as one.
        value = struct.unpack_from(endian + value_format, source, at_value)
        # A fraction compares equal to its quotient, as Pillow's IFDRational does; n/0 equals nothing.
        return value[0] if len(value) == 1 else value[0] / value[1] if value[1] else 0
    return None
