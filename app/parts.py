"""A file's parts, counted before Pillow opens it: decoding costs time for each part of a file,
whatever its pixels.

A 1.3 MB JPEG repeating one scan 24,000 times took 3 minutes of a worker's thread (libjpeg decodes
each scan over the whole picture), a 3 MB GIF of empty comments 12 s (Pillow joins them over and
over), 10 MB of empty JPEG or PNG segments 9 to 14 s (Pillow reads each in Python), and so would bytes
Pillow steps over one at a time. Pictures have a few of each: a progressive JPEG about 10 scans, a big
PNG a thousand chunks, an animated GIF a few blocks before its first frame. The walks here are linear,
jump over whatever is not a part in C (bytes.find, re), and stop at the ceiling.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from app import exif

MAX_PARTS = {"JPEG scans": 100, "JPEG segments": 256, "JPEG junk bytes": 65_536, "JPEG metadata bytes": 1_048_576,
             "PNG chunks": 20_000, "PNG compressed chunks": 64, "GIF blocks": 4_096,
             "HEIF boxes": 10_000, "HEIF boxes where one belongs": 0, "HEIF items": 4_096,
             "HEIF bytes claimed twice": 1_048_576, "HEIF metadata bytes copied": 16_000_000,
             "HEIF auxiliary type bytes": 1_024, "HEIF entity group copies": 100_000, "WebP metadata bytes": 1_048_576}
# pillow_heif copies each top-level image's metadata (EXIF, XMP) and colour profile when it opens a
# HEIC: a 143 kB file of 999 images sharing one EXIF item of 32 extents, all over the same bytes,
# took 3.1 GB; 100 images sharing a 9 MB profile 888 MB. Real items do not overlap, and a phone's
# photo has one image, a few kilobytes of metadata and a profile of a few hundred bytes.
# Pillow reads a JPEG's EXIF (for its resolution; its segments joined) and its MPO index when it opens
# the file, copying out each entry's value of their first directory: entries that all point at the
# same bytes made a 66 kB file cost 3.5 GB and 22 s. Real entries do not overlap.
# A PNG's compressed chunks (an ICC profile, compressed text) are each inflated, up to 1 MB, in Python's
# zlib at open: 9,400 of them in a 10 MB file took 25 to 32 s. A picture has one or two.
COMPRESSED = {b"iCCP", b"zTXt", b"iTXt"}
MAX_WEBP_CHUNKS = 20_000  # how far a WebP's chunks are walked for its metadata (libwebp reads them in C)

# Inside a JPEG scan's coded data an FF is followed by 00 (a stuffed byte), a restart marker
# (D0-D7), 01 or more FFs (fill): any other byte after an FF is a marker. (Written without
# "\xff+", re searches for the FF at C speed: 3 ms for 8 MB rather than 76.)
MARKER = re.compile(rb"\xff([^\x00\x01\xd0-\xd7\xff])")
FILL = re.compile(rb"\xff+")
# Before the first scan Pillow reads the file in Python, two bytes at a time for these: a stuffed
# byte, an extension marker, restart markers, start and end of image (an end there does not stop it).
BARE = {0x00, 0xC8, *range(0xD0, 0xDA), *range(0xF0, 0xFE)}
# Markers Pillow reads a segment after (frames, tables, scans, APPn, comments); any other is an error to it.
SEGMENT = {*range(0xC0, 0xC8), *range(0xC9, 0xD0), *range(0xDA, 0xF0), 0xFE}
PROGRESSIVE = {0xC2, 0xC6, 0xCA, 0xCE}  # start-of-frame markers of progressive JPEGs
READ = {0xC0, 0xC1, 0xC2, 0xC9, 0xCA}  # baseline, extended, progressive (Huffman or arithmetic): a camera's or a browser's


@dataclass(frozen=True)
class Parts:
    counts: dict[str, int]
    # JPEG: libjpeg keeps every DCT coefficient of the picture at full size, whatever scale it
    # outputs: a progressive file, or one whose first scan holds fewer channels than the frame.
    whole_coefficients: bool = False
    # An animated PNG's pixels: Pillow fills a second picture of its size as it opens one (app/images.py).
    animated_pixels: int = 0
    # HEIF: the largest image item of the file (an alpha plane or a depth map may be larger than the photo).
    largest_item_pixels: int = 0
    # A coding Pillow and its libraries must not be given: a lossless JPEG (libjpeg-turbo writes its full-size
    # rows into the buffer Pillow shrank for a reduced scale: the worker crashed), a lossless WebP or
    # losslessly compressed WebP alpha (libwebp builds tables for up to 65,536 Huffman groups: 880 MB from 2 MB).
    coding: str = ""

    def over(self) -> str | None:
        """The first kind of part above its ceiling, if any."""
        return next((kind for kind, count in self.counts.items() if count > MAX_PARTS[kind]), None)


def count(data: bytes) -> Parts:
    if data.startswith(b"\xff\xd8"):
        return jpeg(data)
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return png(data)
    if data.startswith((b"GIF87a", b"GIF89a")) and len(data) > 13:
        return gif(data)
    if data[4:8] == b"ftyp":
        return heif(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return webp(data)
    return Parts({})


def webp(data: bytes) -> Parts:
    """A WebP's metadata chunks (EXIF, XMP, ICC profile): Pillow copies each into the picture's info,
    on top of libwebp's hold on the whole file, for as long as the picture is decoded (+30 MB for 9 MB)."""
    position, metadata, chunks, coding = 12, 0, 0, ""
    while position + 8 <= len(data) and chunks <= MAX_WEBP_CHUNKS:
        kind, size = data[position:position + 4], int.from_bytes(data[position + 4:position + 8], "little")
        metadata += size if kind in (b"EXIF", b"XMP ", b"ICCP") else 0
        if kind == b"VP8L" or (kind == b"ALPH" and data[position + 8:position + 9] and data[position + 8] & 3 == 1):
            coding = "lossless WebP"
        chunks += 1
        position += 8 + size + (size & 1)
    return Parts({"WebP metadata bytes": metadata}, coding=coding)


def jpeg(data: bytes) -> Parts:
    """Before the first scan, as Pillow reads the header (stray bytes and bare markers one at a time, a
    segment by its length); then, as libjpeg reads the scans, marker to marker up to the end of the picture."""
    counts = dict.fromkeys(("JPEG segments", "JPEG scans", "JPEG junk bytes", "JPEG metadata bytes"), 0)
    channels, whole, exif_blocks, coding = 0, False, [], ""
    position, scanning = 2, False  # scanning: past the first scan's header, in coded data libjpeg reads
    while position < len(data) and all(counts[kind] <= MAX_PARTS[kind] for kind in counts):
        if scanning:
            found = MARKER.search(data, position)
            if not found:
                break
            marker, position = found[1][0], found.end()
            if marker == 0xD9:  # the end of the picture: what follows (an MPO's next frame, a phone's video) is not decoded
                break
            if marker not in SEGMENT:  # an image start or extension marker in the scans: libjpeg gives up there
                break
        else:
            if data[position] != 0xFF:
                after = data.find(b"\xff", position)
                counts["JPEG junk bytes"] += (after if after >= 0 else len(data)) - position
                if after < 0:
                    break
                position = after
            fill = FILL.match(data, position).end()
            counts["JPEG junk bytes"] += fill - position - 1
            if fill >= len(data):
                break
            marker, position = data[fill], fill + 1
            if marker in BARE:
                counts["JPEG junk bytes"] += 2
                continue
            if marker not in SEGMENT:  # Pillow stops: "no marker found"
                break
        header = data[position + 2:position + 8]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xCC) and len(header) == 6:  # a frame
            channels, whole = header[5], whole or marker in PROGRESSIVE
            coding = coding or ("" if marker in READ else f"JPEG coding {marker:02X} (lossless or hierarchical)")
        if marker == 0xDA:
            counts["JPEG scans"] += 1
            whole = whole or (bool(header) and header[0] < channels)
            scanning = True
        else:
            counts["JPEG segments"] += 1
        length = max(2, int.from_bytes(data[position:position + 2], "big"))
        body = data[position + 2:position + length]
        if marker == 0xE1 and body.startswith(b"Exif\x00\x00"):  # Pillow joins them: the first whole, then the rest
            exif_blocks.append(body[6:])
        elif marker == 0xE2 and body.startswith(b"MPF\x00"):
            counts["JPEG metadata bytes"] += exif.copied_bytes(body[4:])
        position += length
    joined = b"".join(exif_blocks)
    while joined.startswith(b"Exif\x00\x00"):
        joined = joined[6:]
    counts["JPEG metadata bytes"] += exif.copied_bytes(joined)
    return Parts(counts, whole, coding=coding)


def png(data: bytes) -> Parts:
    position, chunks, compressed, animated, pictured = 8, 0, 0, False, False
    while position + 8 <= len(data) and chunks <= MAX_PARTS["PNG chunks"]:
        chunks += 1
        kind = data[position + 4:position + 8]
        compressed += kind in COMPRESSED
        pictured = pictured or kind == b"IDAT"
        animated = animated or (kind == b"acTL" and not pictured)  # Pillow's test for an APNG
        position += 12 + int.from_bytes(data[position:position + 4], "big")
    pixels = int.from_bytes(data[16:20], "big") * int.from_bytes(data[20:24], "big") if animated else 0
    return Parts({"PNG chunks": chunks, "PNG compressed chunks": compressed}, animated_pixels=pixels)


def gif(data: bytes) -> Parts:
    """Everything before the first image, as Pillow reads it when it opens a GIF: each extension and
    its sub-blocks (a comment up to its first empty sub-block; any other extension one sub-block, then
    a chain up to an empty one, even where the first was the empty one), and any other byte, one at a time."""
    position = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    blocks = 0

    def sub_block() -> bytes:
        nonlocal position, blocks
        size = data[position] if position < len(data) else 0
        blocks += 1
        position += 1 + size
        return data[position - size:position]

    while position < len(data) and data[position] not in (0x2C, 0x3B) and blocks <= MAX_PARTS["GIF blocks"]:
        blocks += 1
        position += 1
        if data[position - 1] != 0x21:  # a stray byte
            continue
        label = data[position] if position < len(data) else 0
        position += 1
        block = sub_block()
        if label == 0xFE:
            while block and blocks <= MAX_PARTS["GIF blocks"]:
                block = sub_block()
            continue
        if label == 0xFF and block.startswith(b"NETSCAPE2.0"):
            sub_block()
        while sub_block() and blocks <= MAX_PARTS["GIF blocks"]:
            pass
    return Parts({"GIF blocks": blocks})


def boxes(data: bytes, start: int, end: int):
    """(type, payload start, end) of each ISO base media box between start and end."""
    while start + 8 <= end:
        size, kind, head = int.from_bytes(data[start:start + 4], "big"), data[start + 4:start + 8], 8
        if size == 1:
            size, head = int.from_bytes(data[start + 8:start + 16], "big"), 16
        elif size == 0:
            size = end - start
        if size < head:
            return
        yield kind, start + head, min(start + size, end)
        start += size


def heif(data: bytes) -> Parts:
    """The items of a HEIF file's `meta` box: what their extents claim (iloc), which images each
    metadata item describes (iref cdsc), the colour profiles and sizes of their properties (ipco, ipma),
    the entity groups pillow_heif copies for each image (grpl). A box that belongs once but comes
    twice is refused: libheif reads the first of some and the last `meta`, and this walk would be
    counting another file than the one decoded."""
    counts = {kind: 0 for kind in MAX_PARTS if kind.startswith("HEIF")}

    def children(start: int, end: int):
        for child in boxes(data, start, end):
            counts["HEIF boxes"] += 1
            if counts["HEIF boxes"] > MAX_PARTS["HEIF boxes"]:
                return
            yield child

    def once(found: list) -> tuple | None:
        counts["HEIF boxes where one belongs"] += max(0, len(found) - 1)
        return found[0] if found else None

    top = list(children(0, len(data)))
    meta = once([(at + 4, end) for kind, at, end in top if kind == b"meta"])
    if meta is None:
        return Parts(counts)
    inside = list(children(*meta))
    parts = {name: once([(at, end) for kind, at, end in inside if kind == name]) for name in (b"iloc", b"iref", b"iprp", b"iinf")}
    claimed, described, properties, associations, groups = {}, [], [], [], 0
    if parts[b"iloc"]:
        at, end = parts[b"iloc"]
        version = data[at:at + 1]
        counts["HEIF items"] = int.from_bytes(data[at + 6:at + (10 if version == b"\x02" else 8)], "big")
        if counts["HEIF items"] > MAX_PARTS["HEIF items"]:  # libheif itself takes about a thousand
            return Parts(counts)
        claimed = item_extents(data[at:end], len(data))
    if parts[b"iref"]:
        at, end = parts[b"iref"]
        size = 4 if data[at:at + 1] == b"\x01" else 2  # version 1: 32-bit item ids
        for reference, inner, inner_end in children(at + 4, end):
            if reference == b"cdsc":  # a metadata item, and the images it describes
                described.append((int.from_bytes(data[inner:inner + size], "big"),
                                  int.from_bytes(data[inner + size:inner + size + 2], "big")))
    if parts[b"iprp"]:
        inner = list(children(*parts[b"iprp"]))
        ipco = once([(at, end) for kind, at, end in inner if kind == b"ipco"])
        ipma = once([(at, end) for kind, at, end in inner if kind == b"ipma"])
        if ipco:  # (kind, size, the first 12 bytes: an ispe's width and height)
            properties = [(kind, end - at, data[at:at + 12]) for kind, at, end in children(*ipco)]
        if ipma:
            entries = int.from_bytes(data[ipma[0] + 4:ipma[0] + 8], "big")
            if entries > MAX_PARTS["HEIF items"]:
                counts["HEIF items"] = entries
                return Parts(counts)
            associations = list(associated(data[ipma[0]:ipma[1]]))
    for kind, at, end in inside:
        if kind == b"grpl":  # each group: version and flags, its id, its entities' count, their ids
            groups += sum(int.from_bytes(data[inner + 8:inner + 12], "big") for _, inner, _ in children(at, end))
    profile = [size if kind == b"colr" else 0 for kind, size, _ in properties]
    counts["HEIF bytes claimed twice"] = max(0, sum(claimed.values()) - len(data))
    counts["HEIF metadata bytes copied"] = (sum(claimed.get(source, 0) * targets for source, targets in described)
                                            + sum(profile[index - 1] for index in associations if 0 < index <= len(profile)))
    counts["HEIF auxiliary type bytes"] = max((size for kind, size, _ in properties if kind == b"auxC"), default=0)
    counts["HEIF entity group copies"] = groups * max(1, counts["HEIF items"])
    largest = max((int.from_bytes(head[4:8], "big") * int.from_bytes(head[8:12], "big")
                   for kind, _, head in properties if kind == b"ispe" and len(head) >= 12), default=0)
    return Parts(counts, largest_item_pixels=largest)


def item_extents(iloc: bytes, file_size: int) -> dict[int, int]:
    """Each item's bytes, the sum of its extents' lengths (0: to the end of the file), from `iloc`."""
    def number(size: int) -> int:
        nonlocal at
        at += size
        return int.from_bytes(iloc[at - size:at], "big")

    version, at = iloc[0] if iloc else 0, 4
    sizes = number(2)
    offset_size, length_size, base_size = sizes >> 12, (sizes >> 8) & 15, (sizes >> 4) & 15
    index_size = sizes & 15 if version in (1, 2) else 0
    items, claimed, total = number(4 if version == 2 else 2), {}, 0
    for _ in range(items):
        if at >= len(iloc) or total > file_size + MAX_PARTS["HEIF bytes claimed twice"]:
            break  # cut short, or already over: the count need go no further
        item = number(4 if version == 2 else 2)
        at += (2 if version in (1, 2) else 0) + 2  # construction method, data reference
        number(base_size)
        extents = number(2)
        if (index_size + offset_size + length_size) * extents > len(iloc) - at and length_size:
            extents = (len(iloc) - at) // (index_size + offset_size + length_size)
        for _ in range(extents):
            at += index_size
            offset = number(offset_size)
            length = number(length_size)
            claimed[item] = claimed.get(item, 0) + (length or max(0, file_size - offset))
        total += claimed.get(item, 0)
    return claimed


def associated(ipma: bytes):
    """The property indices (1-based) each item of an `ipma` box is associated with, all together."""
    version, wide = ipma[0] if ipma else 0, bool(ipma[3] & 1) if len(ipma) >= 4 else False
    at, entries = 8, int.from_bytes(ipma[4:8], "big")
    for _ in range(entries):
        if at >= len(ipma):
            return
        at += 4 if version >= 1 else 2
        count = ipma[at] if at < len(ipma) else 0
        at += 1
        for _ in range(count):
            yield (int.from_bytes(ipma[at:at + 2], "big") & 0x7FFF) if wide else (ipma[at] & 0x7F if at < len(ipma) else 0)
            at += 2 if wide else 1
