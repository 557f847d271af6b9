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
QUARTER_TURNS = {Image.Transpose.TRANSPOSE, Image.Transpose.ROTATE_270, Image.Transpose.TRANSVERSE, Image.Transpose.ROTATE_90}
INLINE = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i"}  # TIFF integer types, by their struct format
XMP = r'tiff:Orientation(="|>)([0-9])'  # Pillow's own pattern


def orientation(image: Image.Image) -> int:
    """1 (as it is) to 8, as Image.getexif() would give it; 1 when there is none."""
    info = image.info
    block = info.get("exif")
    if block is None and "Raw profile type exif" in info:  # PNG text chunks, as Pillow reads them
        try:
            block = bytes.fromhex("".join(str(info["Raw profile type exif"]).split("\n")[3:]))
        except ValueError:
            block = None
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


def first_directory_tag(block: bytes, wanted: int) -> int | None:
    """The integer value of tag `wanted` in a TIFF block's first directory: None when absent, 0 when
    it is not one integer."""
    endian = {b"II*\x00": "<", b"MM\x00*": ">"}.get(block[:4])
    if endian is None or len(block) < 8:
        return None
    (start,) = struct.unpack_from(endian + "I", block, 4)
    if start + 2 > len(block):
        return None
    (entries,) = struct.unpack_from(endian + "H", block, start)
    for at in range(start + 2, min(start + 2 + 12 * entries, len(block) - 11), 12):
        tag, kind, count = struct.unpack_from(endian + "HHI", block, at)
        if tag == wanted:
            # One integer, inline (an orientation never needs more); any other shape turns nothing,
            # as Pillow's lookup of a tuple in exif_transpose finds nothing (nor looks at the XMP).
            return struct.unpack_from(endian + INLINE[kind], block, at + 8)[0] if count == 1 and kind in INLINE else 0
    return None
