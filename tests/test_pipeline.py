"""The pipeline's ranking of candidates and its calls to the networks, mostly without the networks."""
import json
import shutil

from PIL import Image

from model.pipeline import MARGINS, TILES, Candidate, Pipeline, extends, ranked
from model.runtime import Reading
from tests.conftest import FIXTURES


def candidate(number: str, confidence: float, box, score: float = 0.8) -> Candidate:
    return Candidate(box, score, Reading(number, confidence, False, [], [], 0.0))


def test_a_whole_number_outranks_a_more_confident_reading_of_its_part():
    part = candidate("84", 0.99, (10, 10, 60, 50))
    whole = candidate("8444", 0.60, (8, 8, 130, 55))
    assert extends(whole, part) and not extends(part, whole)
    assert ranked([part, whole], threshold=0.5) == [whole, part]


def test_no_inheritance_from_elsewhere_another_number_or_below_the_threshold():
    part = candidate("84", 0.99, (10, 10, 60, 50))
    elsewhere = candidate("8444", 0.60, (200, 10, 130, 55))  # holds none of the part's box
    other = candidate("8123", 0.60, (8, 8, 130, 55))  # does not read the part's digits
    loose = candidate("8444", 0.60, (8, 8, 130, 55), score=0.3)  # a box the localiser doubts
    for rival in (elsewhere, other, loose):
        assert ranked([rival, part], threshold=0.5) == [part, rival]


class FakeReader:
    """Reads every crop as "12" with the confidences given, in turn; counts its runs."""

    threshold = 0.6

    def __init__(self, *confidences: float):
        self.confidences, self.runs = list(confidences), 0

    def read(self, image) -> Reading:
        self.runs += 1
        confidence = self.confidences[min(self.runs, len(self.confidences)) - 1]
        return Reading("12", confidence, confidence >= self.threshold, [], [], 1.0)


class FakeLocator:
    """Proposes the given boxes on the first look and nothing on a closer one; counts its runs."""

    threshold = 0.5

    def __init__(self, found):
        self.found, self.runs = found, 0

    def find(self, image, limit=3):
        self.runs += 1
        return (self.found[:limit] if self.runs == 1 else []), 1.0


def fake_pipeline(reader, locator) -> Pipeline:
    pipeline = Pipeline.__new__(Pipeline)  # the networks' files are not needed to test the control flow
    pipeline.reader, pipeline.locator = reader, locator
    pipeline.confident_threshold = 0.8  # the pipeline's own, above the reader's 0.6
    return pipeline


PHOTO = Image.new("RGB", (400, 300), "white")


def test_a_confident_reading_is_not_read_again_at_the_other_margins():
    pipeline = fake_pipeline(FakeReader(0.7), FakeLocator([]))
    assert pipeline.read_box(PHOTO, (100, 100, 60, 40)).confidence == 0.7 and pipeline.reader.runs == 1

    pipeline = fake_pipeline(FakeReader(0.3, 0.5), FakeLocator([]))
    reading = pipeline.read_box(PHOTO, (100, 100, 60, 40))
    assert pipeline.reader.runs == len(MARGINS) and reading.confidence == 0.5
    assert reading.model_ms == len(MARGINS)  # every run counts in the model's time


def test_a_closer_look_that_finds_nothing_is_not_repeated():
    sure_box, doubtful_box = (100, 100, 40, 30), (250, 200, 40, 30)
    pipeline = fake_pipeline(FakeReader(0.3), FakeLocator([(0.9, sure_box), (0.2, doubtful_box)]))
    answer = pipeline.read(PHOTO)
    assert pipeline.reader.runs == 2 * len(MARGINS)  # no reading is confident: every margin of both boxes
    assert pipeline.locator.runs == 1 + 2  # the first look, then one closer look per box
    assert answer.found and answer.best.box == sure_box and [c.box for c in answer.candidates] == [sure_box, doubtful_box]


def test_an_answer_is_confident_by_the_pipelines_threshold_not_the_readers():
    def answer(confidence: float, score: float = 0.9):
        locator = FakeLocator([(score, (10, 10, 40, 20))])
        return fake_pipeline(FakeReader(confidence), locator).read(Image.new("RGB", (200, 100)))

    sure_reader = answer(0.7)  # the reader's 0.6 is cleared, the pipeline's 0.8 is not
    assert sure_reader.found and sure_reader.best.reading.confident and not sure_reader.confident
    assert answer(0.9).confident
    unfound = answer(0.9, score=0.3)
    assert not unfound.found and not unfound.confident


def test_a_sure_box_whose_reading_is_empty_is_no_number():
    # The reader may read no digits (length 0) in a box the localiser is sure of: nothing to answer.
    class EmptyReader(FakeReader):
        def read(self, image) -> Reading:
            self.runs += 1
            return Reading("", 0.99, True, [], [], 1.0)

    answer = fake_pipeline(EmptyReader(), FakeLocator([(0.95, (10, 10, 40, 20))])).read(Image.new("RGB", (200, 100)))
    assert not answer.found and not answer.confident and answer.number == ""


class CloserLocator(FakeLocator):
    """Proposes `first` on the first look and, on the closer look, `closer` (in the window's pixels
    counted from the picture: the fake is told where the window was cut)."""

    def __init__(self, first, closer):
        super().__init__([first])
        self.closer = closer

    def find(self, image, limit=3):
        self.runs += 1
        if self.runs == 1:
            return [self.found[0]], 1.0
        score, (left, top, width, height) = self.closer
        x0, y0 = image.window
        return [(score, (left - x0, top - y0, width, height))], 1.0


def test_a_closer_look_replaces_the_box_only_where_it_overlaps_and_keeps_the_better_score():
    first = (0.9, (400, 300, 40, 30))
    tighter = CloserLocator(first, (0.6, (405, 302, 34, 26)))
    answer = fake_pipeline(FakeReader(0.9), tighter).read(windows_of(Image.new("RGB", (1000, 800))))
    assert answer.best.box == (405, 302, 34, 26) and answer.best.score == 0.9  # the first look's score stands
    elsewhere = CloserLocator(first, (0.95, (300, 250, 20, 15)))  # in the window, but not on the first box
    answer = fake_pipeline(FakeReader(0.9), elsewhere).read(windows_of(Image.new("RGB", (1000, 800))))
    assert answer.best.box == (400, 300, 40, 30) and answer.best.score == 0.9


def test_a_confident_threshold_calibrated_with_another_reader_is_not_used(tmp_path, caplog):
    from model.runtime import DEFAULT_LOCATOR, DEFAULT_MODEL, Reader

    reader = Reader(DEFAULT_MODEL)
    shutil.copy(DEFAULT_LOCATOR, tmp_path / "locator.tflite")
    card = json.loads(DEFAULT_LOCATOR.with_suffix(".json").read_text())
    for calibrated_with, expected in ((reader.name, 0.99), ("another reader", reader.threshold)):
        (tmp_path / "locator.json").write_text(json.dumps(dict(card, confident_threshold=0.99,
                                                               confident_threshold_reader=calibrated_with)))
        caplog.clear()
        assert Pipeline(DEFAULT_MODEL, tmp_path / "locator.tflite").confident_threshold == expected
        # The operator who swapped the reader and forgot the calibration is told, at start.
        warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert (calibrated_with == "another reader") == any("model.calibrate" in m for m in warned), warned


def test_the_bundled_localiser_was_calibrated_with_the_bundled_reader(app):
    # The localiser's card names the reader its confident threshold was set with (model.calibrate); with
    # any other reader the pipeline quietly uses that reader's own threshold, and every answer's
    # `confident` changes with no test failing. A new reader, under any name, needs the calibration again.
    pipeline = app.extensions["pipeline"]
    card = pipeline.locator.card
    assert card.get("confident_threshold_reader") == pipeline.reader.name, (
        f"{pipeline.locator.path.with_suffix('.json')} was calibrated with {card.get('confident_threshold_reader')!r}, "
        f"not the served reader {pipeline.reader.name!r}: run python -m model.calibrate --val-of <its run> --model "
        f"{pipeline.reader.path}")
    assert pipeline.confident_threshold == card["confident_threshold"]
    # The documents give the threshold served; the card is its source.
    for document in ("README.md", "docs/api.md", "docs/accuracy.md"):
        assert f"{card['confident_threshold']:.3f}" in (FIXTURES.parent.parent / document).read_text(), document


class WindowLocator(FakeLocator):
    """Finds nothing in the whole picture; in a window, a box only where the window holds `spot`."""

    def __init__(self, spot):
        super().__init__([])
        self.spot, self.windows = spot, []

    def find(self, image, limit=3):
        self.runs += 1
        self.windows.append(image.size)
        x, y = self.spot
        left, top = getattr(image, "window", (0, 0))
        if self.runs > 1 and left <= x < left + image.width and top <= y < top + image.height:
            return [(0.8, (x - left - 10, y - top - 5, 20, 10))], 1.0
        return [], 1.0


def windows_of(picture):
    """picture.crop() that remembers where each window was cut, as the fake locator needs."""
    crop = picture.crop

    def remembering(box):
        window = crop(box)
        window.window = box[:2]
        return window
    picture.crop = remembering
    return picture


def test_a_big_picture_where_nothing_is_found_is_searched_again_in_overlapping_windows():
    picture = windows_of(Image.new("RGB", (1000, 600), "white"))
    locator = WindowLocator(spot=(900, 550))  # a small number near the bottom right corner
    answer = fake_pipeline(FakeReader(0.9), locator).read(picture)
    windows = locator.windows[1:1 + TILES * TILES]
    assert len(set(windows)) == 1 and len(windows) == TILES * TILES
    width, height = windows[0]
    assert TILES * width > picture.width and TILES * height > picture.height  # they overlap, and cover it
    assert answer.found and answer.best.box == (890, 545, 20, 10)  # back in the picture's pixels


def test_a_small_picture_or_a_number_found_at_first_sight_is_not_searched_again():
    small = fake_pipeline(FakeReader(0.9), WindowLocator(spot=(100, 100)))
    assert not small.read(windows_of(Image.new("RGB", (300, 200), "white"))).found and small.locator.runs == 1
    found = fake_pipeline(FakeReader(0.9), FakeLocator([(0.9, (100, 100, 40, 30))]))
    assert found.read(Image.new("RGB", (1000, 600), "white")).found
    assert found.locator.runs == 1 + 1  # the first look and one closer look, no windows


def test_a_picture_a_few_pixels_thin_is_answered_without_windows():
    # 2048x1: a window 4/7 of its height would have no pixels at all (it once raised, a 500).
    pipeline = Pipeline()
    for size in ((2048, 1), (1, 2048), (4096, 2), (2048, 13)):
        answer = pipeline.read(Image.new("RGB", size, "white"))
        assert not answer.found and answer.number == ""


def test_the_bundled_models_find_a_small_number_on_a_big_wall_through_the_windows():
    # SVHN test photo 48 ("46", 126x40) on a plain wall 20 times its size: a few pixels of the
    # localiser's first look, which finds nothing there; one window sees it 1.75 times as close.
    photo = Image.open(FIXTURES / "svhn_test" / "48.png").convert("RGB")
    wall = Image.new("RGB", (photo.width * 20, photo.height * 20), (150, 140, 130))
    wall.paste(photo, (wall.width // 3, wall.height // 2))
    pipeline = Pipeline()
    assert pipeline.read(wall).number == "46"
    pipeline.search_tiles = lambda image: ([], 0.0)
    assert not pipeline.read(wall).found
