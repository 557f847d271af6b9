"""Where the digits of a drawing are: the ink on a plain sheet, and its gaps.

A drawing from the page's pad is strokes on a plain sheet, so the number's box needs no
localiser: it is the box around the ink. Digits drawn apart are also easy to tell apart (a
column with no ink between them), and a reader sees one digit far better than four squeezed
into its 64x64 input; model/pipeline.py reads the drawing both whole and digit by digit.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from PIL import Image

from model.preprocess import CROP_MARGIN, Box

# Grey levels away from the sheet's that count as ink. The pad's PNG sheet is exactly flat, so
# even a stroke's faintest anti-aliased rim counts: cutting it off breaks thin strokes apart.
INK = 6
NARROWEST = 0.5  # a cut is at least this wide for its height
SPECK = 0.15  # a piece less tall than this share of the drawing is a stray dot, not a digit
# A blob of ink whose longest side is under MARK of the tallest blob's height, at least APART of that
# height from any other ink, stubby and strong is a mark left by accident (a tap, a flick): digits of
# one number are drawn about one height. Read with the number, it was a digit more (3 read 30 with
# 99.9% confidence). A faint digit (as model/handwriting.py draws some) breaks into small blobs too.
MARK = 1 / 3
APART = 0.15
STUBBY = 2  # no longer than this many widths of its stroke: a tap, or a flick of the pen
STRONG = 0.5  # and inked at least this share as strongly as the drawing's strongest: not a piece of a faint digit
MOST_BLOBS = 200  # a drawing with more is not tidied (Sheet.without_marks)
# One piece of ink less tall than this many widths of its thickest stroke is a tap (a dot, or a
# dot dragged up to 6 pixels) or a dash, not a digit: the reader, shown it enlarged to fill its
# input, took a tap for a confident 0 and a dash for a 1. From the page's pad (its 16-pixel round
# pen), a tap is about 1.1 widths tall, dragged 6 pixels 1.38; of 1,000 MNIST val drawings, the 236 in
# one piece are at least 1.41 (bold, blotted digits): the margin is thin, and no digit is lost.
FLATTEST = 1.4
MARK_SIDE = 256  # the longest side at which a piece is measured for it (the pad is 240 pixels tall)
# The widest gap between digits the drawing reader learnt from (model/handwriting.py), in the ink's
# heights. Read whole, digits drawn further apart are small in a wide strip, out of what it saw.
WIDEST_GAP = 0.5


@dataclass(frozen=True)
class Sheet:
    """A drawing's grey pixels, its sheet's grey (the median: most of a drawing is sheet), and
    where the ink is: wherever the picture differs from the sheet, dark or light ink alike."""
    grey: Image.Image
    paper: int
    ink: np.ndarray

    @classmethod
    def of(cls, image: Image.Image) -> Sheet:
        grey = image.convert("L")
        pixels = np.asarray(grey, dtype=np.int16)
        paper = int(np.median(pixels))
        return cls(grey, paper, np.abs(pixels - paper) > INK)

    def without_marks(self) -> Sheet:
        """The drawing less its stray marks (MARK): blobs apart from the rest, found by cutting the
        ink along columns without ink, then each column's ink along rows without ink. Itself when
        there is none, or when there are over MOST_BLOBS: no drawing of a number has that many, and
        each blob is compared with every other (a grid of 16,000 dots beside a line took minutes)."""
        stretches, boxes = [], []  # a blob's stretch of rows of its column holds it alone; its own box
        for left, right in runs(self.ink.any(axis=0)):
            for top, bottom in runs(self.ink[:, left:right].any(axis=1)):
                if len(stretches) == MOST_BLOBS:
                    return self
                x, y, width, height = box_of(self.ink[top:bottom, left:right])
                stretches.append((left, right, top, bottom))
                boxes.append((left + int(x), top + int(y), left + int(x + width), top + int(y + height)))
        tallest = max((y1 - y0 for _, y0, _, y1 in boxes), default=0)

        def apart(i: int) -> float:  # the gap from blob i's box to the nearest other's
            x0, y0, x1, y1 = boxes[i]
            return min((max(ox0 - x1, x0 - ox1, oy0 - y1, y0 - oy1) for j, (ox0, oy0, ox1, oy1) in enumerate(boxes)
                        if j != i), default=0)

        small = [i for i, (x0, y0, x1, y1) in enumerate(boxes)
                 if max(x1 - x0, y1 - y0) < MARK * tallest and apart(i) >= APART * tallest]
        if not small:  # most drawings: the picture's contrast is not worked out
            return self
        contrast = np.abs(np.asarray(self.grey, dtype=np.int16) - self.paper)
        strongest = contrast.max()
        marks = []
        for i in small:
            x0, y0, x1, y1 = boxes[i]
            if (contrast[y0:y1, x0:x1].max() >= STRONG * strongest
                    and self.is_mark((x0, y0, x1 - x0, y1 - y0), STUBBY, longest=True)):
                marks.append(stretches[i])
        if not marks:
            return self
        grey, ink = np.array(self.grey), self.ink.copy()
        for left, right, top, bottom in marks:
            grey[top:bottom, left:right][ink[top:bottom, left:right]] = self.paper
            ink[top:bottom, left:right] = False
        return Sheet(Image.fromarray(grey), self.paper, ink)

    def box(self) -> Box | None:
        """The box around the ink, or None when there is no digit to read: no ink, or only a tap or a dash."""
        box = box_of(self.ink)
        if box is None:
            return None
        pieces = self.pieces
        if len(pieces) == 1 and self.is_mark(pieces[0]):
            return None
        return box

    def is_mark(self, piece: Box, widths: float = FLATTEST, longest: bool = False) -> bool:
        """Whether a piece of ink is less tall (or, `longest`, less long either way) than `widths`
        widths of its thickest stroke. Each erosion wears a pixel off every side, so a stroke w
        wide is gone after w/2 of them: ink that outlasts height / (2 widths) erosions is thicker
        than height / widths."""
        left, top, width, height = (int(v) for v in piece)
        # Every `step`-th pixel of a big piece (any upload may be read as a drawing): the ratio is
        # the same, and a 2048-pixel outline took 731 erosions and 1.4 s instead of a few ms.
        step = -(-max(width, height) // MARK_SIDE)
        cut = self.ink[top:top + height:step, left:left + width:step]
        ink = np.pad(cut, 1)  # sheet all round: it wears from every side
        for erosion in range(int((max(cut.shape) if longest else cut.shape[0]) / (2 * widths))):
            ink = eroded(ink, erosion)
            if not ink.any():
                return False
        return True

    @cached_property
    def pieces(self) -> list[Box]:
        """The boxes of the ink between columns without ink, left to right, stray dots left out
        (worked out once: box() and the pipeline's reading both need them)."""
        columns = runs(self.ink.any(axis=0))
        boxes = [box_of(self.ink[:, start:end]) for start, end in columns]
        boxes = [(left + start, top, width, height) for (left, top, width, height), (start, _) in zip(boxes, columns)]
        tallest = max((box[3] for box in boxes), default=0)
        return [box for box in boxes if box[3] >= SPECK * tallest]

    def closed_up(self) -> Sheet:
        """The drawing with every gap between its pieces of ink cut down to WIDEST_GAP of the ink's
        height: how far apart the digits were drawn says nothing of what they are. Itself when no
        gap is wider."""
        box = box_of(self.ink)
        if box is None:
            return self
        widest = max(1, round(WIDEST_GAP * box[3]))
        inked = self.ink.any(axis=0)
        # Runs of blank columns between the first and last inked ones.
        gaps = [(start, end) for start, end in runs(~inked) if start > 0 and end < len(inked)]
        if all(end - start <= widest for start, end in gaps):
            return self
        keep = np.ones(len(inked), bool)
        for start, end in gaps:
            keep[start + widest:end] = False
        # The sheet's grey and the ink as found on the whole drawing: taken again from the closed-up
        # one, where ink may be most of the picture, the median would be the ink's own grey.
        return Sheet(Image.fromarray(np.asarray(self.grey)[:, keep]), self.paper, self.ink[:, keep])

    def cut_out(self, box: Box, margin: float = CROP_MARGIN) -> Image.Image:
        """The crop protocol's cut (box grown by `margin` per side) of the box's own columns alone,
        on the plain sheet: a neighbouring piece's ink, which a plain crop would take in, stays out,
        and so does the edge of the picture. A narrow piece (a 1) gets sheet beside it rather than
        being stretched across the reader's square input, which would turn a 1's flag into a 7's bar."""
        left, top, width, height = (int(v) for v in box)
        pad_y = round(margin * height)
        pad_x = max(round(margin * width), round((NARROWEST * (height + 2 * pad_y) - width) / 2))
        out = Image.new("L", (width + 2 * pad_x, height + 2 * pad_y), self.paper)
        y0, y1 = max(0, top - pad_y), min(self.grey.height, top + height + pad_y)
        out.paste(self.grey.crop((left, y0, left + width, y1)), (pad_x, y0 - (top - pad_y)))
        return out


def eroded(mask: np.ndarray, step: int) -> np.ndarray:
    """The mask less its rim: by a 3x3 square on even steps, by a plus on odd ones. Alternated,
    they wear a round stroke as evenly as a straight one (a square alone eats a dot's diagonals
    and made a 16-pixel tap look 12 wide)."""
    inner = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    if step % 2 == 0:
        inner &= mask[:-2, :-2] & mask[:-2, 2:] & mask[2:, :-2] & mask[2:, 2:]
    return np.pad(inner, 1)


def runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """The (start, end) of each run of True in a row of flags."""
    edges = np.flatnonzero(np.diff(np.concatenate([[False], flags, [False]]).astype(np.int8)))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


def box_of(mask: np.ndarray) -> Box | None:
    """The box around the True pixels of a mask, or None when there is none."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return None
    return float(cols[0]), float(rows[0]), float(cols[-1] - cols[0] + 1), float(rows[-1] - rows[0] + 1)
