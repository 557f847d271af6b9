"""The localiser's training pictures: boxes where the numbers are, determinism, no number in negatives."""
import numpy as np
import pytest
from PIL import Image

from model.data import load_samples
from model.handwriting import Handwriting
from model.scenes import KINDS, Lettering, Pictures, negatives_of, paste_patches, scene_of
from model.synth import walls_of
from tests.conftest import FIXTURES


@pytest.fixture(scope="module")
def pictures():
    samples = load_samples(FIXTURES / "svhn_train")
    images = {s.path: Image.open(s.path).convert("L") for s in samples}
    strokes = np.zeros((10, 28, 28), np.uint8)
    strokes[:, 6:22, 12:16] = 255  # ten "ones" stand in for MNIST
    return Pictures(samples, images, Handwriting(strokes, np.arange(10) % 10))


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_gives_boxes_inside_the_picture(pictures, kind):
    rng = np.random.default_rng(3)
    for _ in range(20):
        image, boxes = getattr(pictures, kind)(rng)
        assert image.mode == "L" and min(image.size) >= 4
        assert (len(boxes) == 0) == (kind == "negative")
        for left, top, width, height in boxes:
            assert width > 0 and height > 0
            assert -1 <= left and -1 <= top and left + width <= image.width + 1 and top + height <= image.height + 1


def test_the_same_seed_draws_the_same_pictures(pictures):
    a = [pictures.draw(np.random.default_rng(11)) for _ in range(5)]
    b = [pictures.draw(np.random.default_rng(11)) for _ in range(5)]
    for (image_a, boxes_a), (image_b, boxes_b) in zip(a, b):
        assert boxes_a == boxes_b and np.array_equal(np.asarray(image_a), np.asarray(image_b))


def test_lettering_takes_its_share_of_negatives_and_keeps_its_shape_in_scenes():
    samples = load_samples(FIXTURES / "svhn_train")[:10]
    images = {s.path: Image.open(s.path).convert("L") for s in samples}
    sign = Image.new("L", (80, 20), 7)  # a word four times as wide as it is high
    pictures = Pictures(samples, images, lettering=Lettering(lambda rng: sign, share=1.0))
    rng = np.random.default_rng(0)
    for _ in range(5):
        image, boxes = pictures.negative(rng)
        assert image is sign and boxes == []
    canvas = Image.new("L", (300, 300), 200)
    paste_patches(canvas, rng, [], 1, (100, 100), Lettering(lambda rng: sign, share=1.0))
    left, top, right, bottom = Image.fromarray((np.asarray(canvas) < 100).astype(np.uint8) * 255).getbbox()
    assert 3 <= (right - left) / (bottom - top) <= 5


def test_small_scenes_put_the_number_far_off():
    samples = load_samples(FIXTURES / "svhn_train")
    images = {s.path: Image.open(s.path).convert("L") for s in samples}
    spans = {}
    for share in (0.0, 1.0):
        pictures, rng = Pictures(samples, images, small_scenes=share), np.random.default_rng(5)
        spans[share] = [image.width / box[2] for image, (box,) in (pictures.scene(rng) for _ in range(20))]
    assert min(spans[1.0]) >= 3.9 and min(spans[0.0]) < 3.9  # 4-12x the content, against 1.3-4x


def test_unlabelled_photos_take_their_share_of_scenes_with_their_numbers_box():
    samples = load_samples(FIXTURES / "svhn_train")
    images = {s.path: Image.open(s.path).convert("L") for s in samples}
    photo = Image.new("L", (40, 24), 3)  # as model/pseudo.py draws one: the number's box inside the photo
    draws = []
    unlabelled = lambda rng: draws.append(1) or (photo, (4, 2), (6.0, 4.0, 28.0, 16.0))  # noqa: E731
    for share, expected in ((1.0, 20), (0.0, 0)):
        draws.clear()
        pictures, rng = Pictures(samples, images, unlabelled=unlabelled, unlabelled_share=share), np.random.default_rng(2)
        for image, (box,) in (pictures.scene(rng) for _ in range(20)):
            if share:
                left, top, width, height = map(round, box)
                # The box's centre is the photo's (a feathered paste blends only its rim).
                assert (width, height) == (28, 16) and np.asarray(image)[top + height // 2, left + width // 2] == 3
        assert len(draws) == expected


def test_a_scene_box_lands_on_the_pasted_number():
    content = Image.new("L", (30, 20), 255)
    content.paste(0, (5, 4, 25, 16))  # a black "number" at (5, 4, 20, 12)
    scene, (box,) = scene_of(content, [(5, 4, 20, 12)], np.random.default_rng(0), walls=[], factor=3.0)
    assert scene.size == (90, 60)
    left, top, width, height = map(int, box)
    assert (np.asarray(scene)[top:top + height, left:left + width] == 0).all()


def test_walls_and_negatives_hold_no_digit_pixels():
    # Paint every digit box of real fixture photos white on black: a wall cut from beside the
    # digits, and so a negative made from walls, must then be black all over.
    samples = load_samples(FIXTURES / "svhn_train")[:10]
    painted = {}
    for s in samples:
        with Image.open(s.path) as photo:
            mask = Image.new("L", photo.size, 0)
        for left, top, width, height in s.boxes:
            mask.paste(255, (int(left), int(top), int(np.ceil(left + width)), int(np.ceil(top + height))))
        painted[s.path] = mask
    walls = [wall for s in samples for wall in walls_of(s, painted[s.path])]
    assert walls and all(np.asarray(wall).max() == 0 for wall in walls)
    negatives = negatives_of(samples, painted, np.random.default_rng(0), 12)
    assert len(negatives) == 12
    assert all(np.asarray(n).max() == 0 and min(n.size) >= 24 for n in negatives[::2])  # photo regions, not slivers
    # every wall once before any twice: a wall counted twice would count its false alarm twice
    photos = {s.path: Image.open(s.path).convert("L") for s in samples}
    real_walls = [wall for s in samples for wall in walls_of(s, photos[s.path], min_size=24)]
    every = negatives_of(samples, photos, np.random.default_rng(0))
    assert len(every) == 2 * len(real_walls)

    def key(picture):
        return picture.size, np.asarray(picture).tobytes()
    assert sorted(map(key, every[::2])) == sorted(map(key, real_walls))
