"""The training data generators: shapes, labels that match what was drawn, and seeded determinism."""
import json

import numpy as np
import pytest
from PIL import Image

from model.augment import lower_resolution
from model.data import Sample, load_samples
from model.handwriting import Handwriting, load_mnist, read_idx, with_flag
from model.preprocess import protocol_crop, to_input
from model.pseudo import load_pseudo_labels, pseudo_photos
from model.synth import DigitBank
from model.train import Batches, composed, digit_free, real_photos
from tests.conftest import FIXTURES


@pytest.fixture(scope="module")
def photos():
    samples = load_samples(FIXTURES / "svhn_train")
    return samples, {s.path: Image.open(s.path).convert("L") for s in samples}


def test_read_idx_round_trip(mnist_dir):
    images, labels = load_mnist(mnist_dir, "train")
    assert images.shape == (10, 28, 28) and labels.tolist() == list(range(10))
    assert read_idx(mnist_dir / "train-labels-idx1-ubyte.gz").dtype == np.uint8


def test_mnist_val_is_the_train_file_tail_that_train_never_holds(mnist_dir, monkeypatch):
    monkeypatch.setattr("model.handwriting.MNIST_VAL_START", 7)  # the 10-image fixture's 50,000
    assert load_mnist(mnist_dir, "train")[1].tolist() == list(range(7))
    images, labels = load_mnist(mnist_dir, "val")
    assert labels.tolist() == [7, 8, 9] and images.shape == (3, 28, 28)
    with pytest.raises(ValueError):
        load_mnist(mnist_dir, "validation")


def test_recombined_numbers(photos):
    samples, images = photos
    bank = DigitBank(samples, images)
    assert sum(map(len, bank.crops)) == sum(len(s.digits) for s in samples)
    for seed in range(20):
        canvas, digits, boxes = bank.compose(np.random.default_rng(seed))
        assert 1 <= len(digits) <= 5 and len(boxes) == len(digits)
        assert all(0 <= d <= 9 for d in digits)
        for left, top, width, height in boxes:  # every digit lies on the canvas, left to right
            assert left >= 0 and top >= 0 and left + width <= canvas.width and top + height <= canvas.height
        assert [b[0] for b in boxes] == sorted(b[0] for b in boxes)


def test_handwriting_draws_the_labelled_digits(mnist_dir):
    writer = Handwriting(*load_mnist(mnist_dir, "train"))
    for seed in range(10):
        canvas, digits, boxes = writer.compose(np.random.default_rng(seed))
        pixels = np.asarray(canvas)
        sheet = np.median(pixels)
        for left, top, width, height in boxes:
            inside = pixels[top: top + height, left: left + width]
            assert inside.min() < sheet - 100  # dark ink inside each digit box
        ink_columns = np.where((pixels < sheet - 100).any(axis=0))[0]
        assert ink_columns.min() >= boxes[0][0] and ink_columns.max() < boxes[-1][0] + boxes[-1][2]


# Label checks need digits whose pixels say which digit they are. Recombined crops: every digit's
# photo crop is a flat grey of its own, on a lighter wall, so a box's centre reads its digit.
WALL, GREYS = 250, [10 + 20 * d for d in range(10)]


def flat_digit_photos():
    """Two photos of five digits each (0-4, 5-9), every digit box filled with the grey of its digit."""
    samples, images = [], {}
    for first in (0, 5):
        photo, boxes = Image.new("L", (200, 60), WALL), []
        for i, digit in enumerate(range(first, first + 5)):
            left, top, width, height = 20 + 34 * i, 10, 24, 40
            photo.paste(GREYS[digit], (left, top, left + width, top + height))
            boxes.append((float(left), float(top), float(width), float(height)))
        sample = Sample(path=FIXTURES / f"flat{first}.png", digits=tuple(range(first, first + 5)), boxes=tuple(boxes))
        samples.append(sample)
        images[sample.path] = photo
    return samples, images


def grey_digit_in(canvas, box):
    """The digit whose grey fills the middle of a box (where the feathered paste is opaque)."""
    left, top, width, height = box
    middle = np.asarray(canvas)[top + height // 3: top + 2 * height // 3 + 1, left + width // 3: left + 2 * width // 3 + 1]
    return int(np.abs(np.array(GREYS) - np.median(middle)).argmin())


def test_recombined_numbers_hold_the_labelled_crops_left_to_right():
    samples, images = flat_digit_photos()
    bank = DigitBank(samples, images)
    lengths = set()
    for seed in range(30):
        canvas, digits, boxes = bank.compose(np.random.default_rng(seed))
        lengths.add(len(digits))
        assert tuple(grey_digit_in(canvas, box) for box in boxes) == digits  # each box holds its label's crop
        assert tuple(grey_digit_in(canvas, box) for box in sorted(boxes)) == digits  # read left to right
    assert {1, 2, 3} <= lengths  # numbers of several digits, whose order can be wrong


# Handwriting: the bank crops each MNIST digit to its ink, so a digit told by its column (as the
# mnist_dir fixture's bars are) comes out the same for every digit. Here digit d is d + 1
# vertical strokes, which a crop, a thinner or bolder pen and scaling all keep.
def stroke_digits():
    images = np.zeros((10, 28, 72), np.uint8)
    for d in range(10):
        for stroke in range(d + 1):
            images[d, 4:24, 4 + 7 * stroke: 7 + 7 * stroke] = 255  # 3 wide, 4 apart
    return images, np.arange(10, dtype=np.uint8)


def strokes_in(canvas, box):
    """How many separate runs of ink cross the middle row of a box."""
    left, top, width, height = box
    pixels = np.asarray(canvas, np.int16)
    row = pixels[top + height // 2, left: left + width] < np.median(pixels) - 50
    return int(row[0]) + int(np.count_nonzero(row[1:] & ~row[:-1]))


def test_handwriting_labels_say_which_digit_each_box_holds_left_to_right():
    writer = Handwriting(*stroke_digits())
    for seed in range(30):
        canvas, digits, boxes = writer.compose(np.random.default_rng(seed), length=seed % 4 + 1)
        assert tuple(strokes_in(canvas, box) - 1 for box in boxes) == digits
        assert tuple(strokes_in(canvas, box) - 1 for box in sorted(boxes)) == digits  # read left to right


def test_a_flag_goes_from_the_top_of_a_1_down_to_its_left():
    stick = np.zeros((28, 28), np.uint8)
    stick[4:24, 13:16] = 255
    for seed in range(20):
        flagged = with_flag(stick, np.random.default_rng(seed))
        assert (flagged >= stick).all()  # the stick is kept as it was
        rows, columns = np.nonzero((flagged > 96) & (stick <= 96))
        assert columns.min() < 13 and columns.max() <= 16  # leftwards, not rightwards
        assert rows.min() >= 2 and rows.max() < 14  # from the top, no lower than the stick's middle
    blank = np.zeros((28, 28), np.uint8)
    assert (with_flag(blank, np.random.default_rng(0)) == 0).all()


def test_a_longer_reach_gives_longer_flags_from_the_same_draws():
    stick = np.zeros((28, 28), np.uint8)
    stick[4:24, 13:16] = 255

    def leftmost(seed, *reach):
        added = (with_flag(stick, np.random.default_rng(seed), *reach) > 96) & (stick <= 96)
        return np.nonzero(added)[1].min()

    default = [leftmost(seed, 0.35) for seed in range(10)]
    assert default == [leftmost(seed) for seed in range(10)]  # 0.35 is the default: the numbers drawn before are unchanged
    longer = [leftmost(seed, 1.0) for seed in range(10)]
    assert all(l <= d for l, d in zip(longer, default)) and sum(longer) < sum(default) - 10


def test_handwriting_repeats_one_digit_half_the_time_a_1():
    writer = Handwriting(*stroke_digits(), repeats=1.0)
    numbers = [writer.compose(np.random.default_rng(seed))[1] for seed in range(200)]
    assert all(len(set(digits)) == 1 for digits in numbers)
    assert 0.4 < np.mean([digits[0] == 1 for digits in numbers]) < 0.7  # half, and 1 in a tenth of the rest
    canvas, digits, boxes = Handwriting(*stroke_digits(), repeats=1.0).compose(np.random.default_rng(3), length=3)
    assert tuple(strokes_in(canvas, box) - 1 for box in boxes) == digits  # still the digits drawn


def test_batches_are_deterministic_and_labelled(photos):
    samples, images = photos
    bank = DigitBank(samples, images)
    make = lambda seed: Batches([(0.5, real_photos(samples, images)), (0.5, composed(bank))], 16, 2, seed)  # noqa: E731
    x1, y1 = make(3)[1]
    x2, y2 = make(3)[1]
    x3, _ = make(4)[1]
    assert x1.shape == (16, 64, 64, 1) and np.array_equal(x1, x2) and not np.array_equal(x1, x3)
    assert np.array_equal(y1["length"], y2["length"])
    for length, digits in zip(y1["length"], y1["digits"]):  # "no digit" exactly past the length
        assert all(d < 10 for d in digits[:length]) and all(d == 10 for d in digits[length:])
    batches = make(3)
    batches.on_epoch_end()
    assert not np.array_equal(batches[1][0], x1)  # a new epoch draws new augmentations


_FORKED = {}  # as Keras does, the batches reach forked workers through a global, not pickled


def _draw(index):
    return _FORKED["batches"][index]


def test_worker_processes_draw_the_batches_one_process_draws(photos, mnist_dir, tmp_path):
    """--workers: Keras fetches batches in a pool of processes forked at each epoch's start; each
    batch must be a function of (seed, epoch, index) alone, with every source of the mix in play."""
    import multiprocessing

    from model.train import Config, sources_for

    samples, images = photos
    config = Config(data=str(FIXTURES / "svhn_train"), fonts=str(tmp_path), font_fraction=0.2, blank_fraction=0.1,
                    mnist=str(mnist_dir), handwriting_fraction=0.2)
    mix, _ = sources_for(config, samples, images)
    batches = Batches(mix, 16, 6, seed=3, workers=3)
    assert batches.workers == 3 and batches.use_multiprocessing  # what Keras's PyDataset fetches with
    assert not Batches(mix, 16, 6, seed=3).use_multiprocessing
    for _ in range(2):  # two epochs: the second's batches must follow the epoch counter in the workers too
        alone = [batches[i] for i in range(len(batches))]
        _FORKED["batches"] = batches
        with multiprocessing.get_context("fork").Pool(3) as pool:  # forked now: this epoch's counter
            together = pool.map(_draw, [*range(len(batches))] * 2)
        for i, (x, y) in enumerate(together):
            assert np.array_equal(x, alone[i % len(batches)][0])
            assert np.array_equal(y["digits"], alone[i % len(batches)][1]["digits"])
        batches.on_epoch_end()


def test_without_augmentation_an_example_is_the_protocol_crop(photos):
    samples, images = photos
    plain = [to_input(protocol_crop(images[s.path], list(s.boxes))) for s in samples]
    x, y = Batches([(1.0, real_photos(samples, images))], 8, 1, seed=5, augment=False)[0]
    for example, length in zip(x, y["length"]):
        assert any(np.array_equal(example, p) for p in plain) and 1 <= length <= 5
    augmented, _ = Batches([(1.0, real_photos(samples, images))], 8, 1, seed=5)[0]
    assert not any(np.array_equal(augmented[0], p) for p in plain)


def test_low_resolution_loses_fine_detail_and_keeps_the_size():
    stripes = Image.fromarray(np.tile(np.repeat(np.array([0, 255], np.uint8), 2), (64, 16)))  # 2-pixel bars
    lowered = lower_resolution(stripes, np.random.default_rng(0))
    detail = lambda image: np.abs(np.diff(np.asarray(image, np.float32), axis=1)).mean()  # noqa: E731
    assert lowered.size == stripes.size and detail(lowered) < detail(stripes) / 2


def test_low_res_examples_change_only_when_asked_for(photos):
    samples, images = photos
    make = lambda **low_res: Batches([(1.0, real_photos(samples, images))], 16, 1, seed=6, **low_res)[0]  # noqa: E731
    (plain, labels), (unasked, _), (lowered, lowered_labels) = make(), make(low_res=0.0), make(low_res=1.0)
    assert np.array_equal(plain, unasked)  # runs without the option keep their batches
    # The first example is drawn from the same photo and jitter, then seen at a lower resolution.
    assert np.array_equal(labels["digits"][0], lowered_labels["digits"][0]) and not np.array_equal(plain[0], lowered[0])


def test_pseudo_labelled_photos(tmp_path):
    record = {"folder": str(FIXTURES / "svhn_test"), "labels": {"1.png": {"number": "5", "confidence": 0.99}}}
    (tmp_path / "pseudo.json").write_text(json.dumps(record))
    photos = load_pseudo_labels(str(tmp_path / "pseudo.json"))
    image, digits, box = pseudo_photos(photos)(np.random.default_rng(0))
    assert digits == (5,) and image.mode == "L"
    left, top, width, height = box  # the middle of the photo, as if it were a protocol crop
    assert np.isclose(left * 2 + width, image.width) and np.isclose(top * 2 + height, image.height)


def test_digit_free_regions_are_labelled_no_number(photos):
    samples, images = photos
    bank = DigitBank(samples, images)
    x, y = Batches([(1.0, digit_free(bank.backgrounds))], 8, 1, seed=2)[0]
    assert x.shape == (8, 64, 64, 1) and np.isfinite(x).all()
    assert (y["length"] == 0).all() and (y["digits"] == 10).all()
