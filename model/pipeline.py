"""A whole picture -> the house number in it: find candidate regions, read each, pick one.
A drawing from the page's pad is read by its own path, read_drawing().

The localiser proposes a few boxes and looks again, closer, at small ones (and, in a big picture
where it finds nothing at first sight, in overlapping windows of it); each box is cut out
with margins like those the reader was trained on (around the crop protocol's 30%) and read.
The answer is the candidate whose box score times reading confidence is highest, save that a
reading of a whole number outranks a more confident one of its part (ranked()); it counts as
found when its box score clears the localiser's threshold (set through this pipeline on
validation pictures without digits, model/calibrate.py) and it has at least one digit.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image

from model.data import MAX_DIGITS
from model.drawing import Sheet
from model.heatmap import LOCATOR_SIZE, intersection, iou
from model.preprocess import Box, grow_box, protocol_crop
from model.runtime import DEFAULT_DRAWING, DEFAULT_LOCATOR, DEFAULT_MODEL, Locator, Reader, Reading

log = logging.getLogger(__name__)

CANDIDATES = 2  # regions read per picture: a third changed no answer on validation and cost 2-3 ms
MARGINS = (0.3, 0.2)  # per side, in box sizes, the usual first: a looser third (0.45) changed no answer on validation
SAME_LOOK = 0.8  # a closer look whose box overlaps the last this much (IoU) would see nearly its window again
ZOOM = 3.0  # a closer look's window, in box sizes
LOOKS = 3  # a number in a photo within a wide scene: the scene, then the photo, then the number
PART_INSIDE = 0.7  # a box is part of another when this share of its area lies within it
TILES = 2  # a big picture where the first look finds nothing is searched again in TILES x TILES windows
TILE_OVERLAP = 0.25  # of a window's side, so that a number on a seam is whole in one of them
MIN_WINDOW = 8  # pixels: a window of the picture narrower or lower than this holds no readable number
# The shortest photo the reader learnt from (SVHN train, as its test) is 12 pixels tall. Below that a
# picture holds no number it can read, and one dark pixel in a 3x3 picture was read as a confident 4.
MIN_HEIGHT = 12


@dataclass(frozen=True)
class Candidate:
    box: Box  # left, top, width, height in the picture's pixels
    score: float  # the localiser's belief, 0-1, that a number is centred here: the best of its looks at this number
    reading: Reading
    digit_boxes: tuple[Box, ...] = ()  # one per digit, where the design yields them (a drawing read piece by piece)


@dataclass(frozen=True)
class Answer:
    found: bool
    best: Candidate | None  # the chosen candidate, even when not found (its reading explains why)
    candidates: list[Candidate]  # every region read, best first
    model_ms: float  # the networks' time, all candidates
    confident: bool = False  # found, with a confidence at which such answers were 98% right on validation

    @property
    def number(self) -> str:
        return self.best.reading.number if self.found else ""


def extends(whole: Candidate, part: Candidate) -> bool:
    """Whether `whole` reads more digits than `part`, among them all of part's in a row, and part's
    box lies mostly within whole's: the same number seen whole and in part."""
    number, (_, _, width, height) = part.reading.number, part.box
    return number != "" and len(whole.reading.number) > len(number) and number in whole.reading.number \
        and intersection(part.box, whole.box) >= PART_INSIDE * width * height


def ranked(candidates: list[Candidate], threshold: float) -> list[Candidate]:
    """Best first, by box score times reading confidence, save for parts of a number.

    A box around some digits of a number reads them with a confidence as high as a box around
    all of them, often higher (a number written with wide gaps, or 1444 read 144): the reader
    has one complete number in view either way. So a candidate whose reading extends another's
    (extends()) ranks at least as high as that part, and above it on a tie, provided its own box
    is one the localiser believes in (score at or above the found threshold): a loose box that
    takes in a neighbouring mark as one more digit does not inherit anything.
    """
    def rank(candidate: Candidate) -> tuple[float, int]:
        own = candidate.score * candidate.reading.confidence
        if candidate.score < threshold:
            return own, 0
        parts = [c.score * c.reading.confidence for c in candidates if c is not candidate and extends(candidate, c)]
        return max([own, *parts]), len(candidate.reading.number)
    return sorted(candidates, key=rank, reverse=True)


def fills(box: Box, image: Image.Image, share: float = 0.8) -> bool:
    """Whether the box with its reading margin spans most of the picture: a visitor's own crop,
    which is read as it is rather than cut again by a box a few pixels off."""
    _, _, width, height = grow_box(box)
    return width >= share * image.width and height >= share * image.height


def joined(readings: list[Reading], threshold: float) -> Reading:
    """Pieces of a drawing read one by one -> the number they make: right only if every piece is,
    so its confidence is the product. Its digit rows are each piece's own for the digits it read;
    it has no length distribution (empty), the length being the pieces' count."""
    number = "".join(r.number for r in readings)
    confidence = math.prod(r.confidence for r in readings)
    digits = [row for r in readings for row in r.digit_probs[: len(r.number)]]
    return Reading(number, confidence, confidence >= threshold, [], digits, sum(r.model_ms for r in readings))


class Pipeline:
    def __init__(self, reader_path: str | Path = DEFAULT_MODEL, locator_path: str | Path = DEFAULT_LOCATOR,
                 drawing_path: str | Path = DEFAULT_DRAWING, num_threads: int = 1):
        self.reader = Reader(reader_path, num_threads)
        self.locator = Locator(locator_path, num_threads)
        self.drawing_reader = Reader(drawing_path, num_threads)
        self.name = f"{self.locator.name}+{self.reader.name}"
        # An answer is called confident at the confidence above which the pipeline's own answers on
        # validation photos were 98% right (model.calibrate): a box a little off or a number small
        # in a scene makes a reading less sure to be right than the same confidence on a clean
        # crop, where the reader's own threshold was set (it still decides the second margin).
        # A threshold calibrated with another reader says nothing of this one's answers.
        card = self.locator.card
        calibrated = card.get("confident_threshold") and card.get("confident_threshold_reader") == self.reader.name
        self.confident_threshold = float(card["confident_threshold"]) if calibrated else self.reader.threshold
        if card.get("confident_threshold") and not calibrated:  # a new reader whose calibration was forgotten
            log.warning("%s's confident threshold was set with the reader %r, not %r: using the reader's own (%.3f); "
                        "run python -m model.calibrate for this pair", self.locator.path.with_suffix(".json"),
                        card.get("confident_threshold_reader"), self.reader.name, self.reader.threshold)

    def read(self, image: Image.Image) -> Answer:
        if image.height < MIN_HEIGHT:
            return Answer(False, None, [], 0.0)
        boxes, model_ms = self.locator.find(image, limit=CANDIDATES)
        if not boxes or boxes[0][0] < self.locator.threshold:
            tiled, ms = self.search_tiles(image)
            model_ms += ms
            # The windows overlap, so one number may be found in two and fill both places. Keeping
            # only distinct boxes let a second region in instead, which cost answers on validation
            # (model/report/experiments.md, "Distinct boxes from the windows").
            boxes = sorted(boxes + tiled, key=lambda found: found[0], reverse=True)[:CANDIDATES]
        candidates = []
        for score, box in boxes:
            for _ in range(LOOKS - 1):
                closer, score, ms = self.refine(image, box, score)
                model_ms += ms
                same = iou(closer, box) >= SAME_LOOK
                box = closer
                if same:
                    break
            reading = self.reader.read(image) if fills(box, image) else self.read_box(image, box)
            model_ms += reading.model_ms
            candidates.append(Candidate(box, score, reading))
        candidates = ranked(candidates, self.locator.threshold)
        best = candidates[0] if candidates else None
        found = best is not None and best.score >= self.locator.threshold and best.reading.number != ""
        return Answer(found, best, candidates, model_ms, found and best.reading.confidence >= self.confident_threshold)

    def read_drawing(self, image: Image.Image) -> Answer:
        """A drawing (strokes on a plain sheet, as the page's pad sends) -> the number drawn.

        The drawing reader reads the ink whole and, where the digits stand apart, piece by
        piece. The pieces' reading competes (on confidence) only when it has as many digits as
        the whole one: a digit drawn in two strokes with a gap between them makes one piece too
        many, and the whole reading is the better judge of the count. An empty sheet is no number.
        """
        sheet = Sheet.of(image).without_marks()  # a tap or flick left beside the number is no digit
        box = sheet.box()
        if box is None:
            return Answer(False, None, [], 0.0)
        closed = sheet.closed_up()  # digits drawn far apart, read whole as if drawn closer
        candidates = [Candidate(box, 1.0, self.drawing_reader.read(closed.cut_out(closed.box())))]
        parts = sheet.pieces
        if 1 < len(parts) <= MAX_DIGITS:
            readings = [self.drawing_reader.read(sheet.cut_out(part)) for part in parts]
            apart = joined(readings, self.drawing_reader.threshold)
            if len(apart.number) <= MAX_DIGITS:
                # When each piece reads one digit, the pieces are the digits' boxes (not when two touch).
                one_each = all(len(r.number) == 1 for r in readings)
                candidates.append(Candidate(box, 1.0, apart, tuple(parts) if one_each else ()))
        whole = candidates[0].reading
        candidates.sort(key=lambda c: (len(c.reading.number) == len(whole.number), c.reading.confidence), reverse=True)
        best = candidates[0]
        found = best.reading.number != ""
        model_ms = sum(c.reading.model_ms for c in candidates)
        return Answer(found, best, candidates, model_ms, found and best.reading.confident)

    def read_box(self, image: Image.Image, box: Box) -> Reading:
        """The more confident of the readings with the usual and a tighter margin: a box a little
        off takes in a neighbouring mark with one margin and not with the other.

        The tighter one is read only when the usual one's reading is not confident (98% right
        on validation), which saves a run of the reader for most numbers.
        """
        readings = []
        for margin in MARGINS:
            readings.append(self.reader.read(protocol_crop(image, [box], margin)))
            if readings[0].confident:
                break
        best = max(readings, key=lambda r: r.confidence)
        return replace(best, model_ms=sum(r.model_ms for r in readings))

    def search_tiles(self, image: Image.Image) -> tuple[list[tuple[float, Box]], float]:
        """The best box of each of TILES x TILES overlapping windows of a big picture.

        Letterboxed whole into the localiser's input, a number a tenth of a house front's height
        is two or three cells of its heat map and scores too low to be found; each window (4/7 of
        the picture's width and height) is seen 1.75 times closer. A picture under twice the
        input's side would only be enlarged by it.
        -> ([(score, box in the picture's pixels)], model ms)
        """
        side_w, side_h = (int(n / (TILES - (TILES - 1) * TILE_OVERLAP)) for n in image.size)
        # A strip a few pixels thin (a 2048x1 upload) would give windows of no height at all.
        if max(image.size) < TILES * LOCATOR_SIZE or min(side_w, side_h) < MIN_WINDOW:
            return [], 0.0
        found, model_ms = [], 0.0
        for row in range(TILES):
            for column in range(TILES):
                x0, y0 = round(column * (image.width - side_w) / (TILES - 1)), round(row * (image.height - side_h) / (TILES - 1))
                boxes, ms = self.locator.find(image.crop((x0, y0, x0 + side_w, y0 + side_h)), limit=1)
                model_ms += ms
                found += [(score, (left + x0, top + y0, width, height)) for score, (left, top, width, height) in boxes]
        return found, model_ms

    def refine(self, image: Image.Image, box: Box, score: float) -> tuple[Box, float, float]:
        """Look again, closer: a number small in a big picture is only a few cells of the heat map.

        The localiser runs once more on a window ZOOM times the box's size around it, where the
        number fills a third of the view, as in a typical SVHN photo; its best box there, if it
        overlaps the first one, replaces it, with the better of the two looks' scores: a number seen
        surely from afar is no less one for being unsure up close. -> (box, score, model ms).
        """
        left, top, width, height = box
        side_w, side_h = width * ZOOM, height * ZOOM
        x0, y0 = max(0, int(left + width / 2 - side_w / 2)), max(0, int(top + height / 2 - side_h / 2))
        x1, y1 = min(image.width, int(x0 + side_w)), min(image.height, int(y0 + side_h))
        if (x1 - x0) > 0.8 * image.width and (y1 - y0) > 0.8 * image.height or min(x1 - x0, y1 - y0) < MIN_WINDOW:
            return box, score, 0.0  # the first look already saw the number this close
        found, ms = self.locator.find(image.crop((x0, y0, x1, y1)), limit=1)
        if not found:
            return box, score, ms
        closer_score, (cl, ct, cw, ch) = found[0]
        closer = (cl + x0, ct + y0, cw, ch)
        return (closer, max(score, closer_score), ms) if iou(closer, box) > 0 else (box, score, ms)
