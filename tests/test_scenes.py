"""The localiser's training pictures: boxes where the numbers are, determinism, no number in negatives."""
import numpy as np
import pytest
from PIL import Image

from model.data import load_samples
from model.handwriting import Handwriting
from model.preprocess import union_box
from model.scenes import KINDS, Pictures, negatives_of, scene_of
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


def test_a_scene_box_lands_on_the_pasted_number():
    content = Image.new("L", (30, 20), 255)
    content.paste(0, (5, 4, 25, 16))  # a black "number" at (5, 4, 20, 12)
    scene, (box,) = scene_of(content, [(5, 4, 20, 12)], np.random.default_rng(0), walls=[], factor=3.0)
    assert scene.size == (90, 60)
    left, top, width, height = map(int, box)
    assert (np.asarray(scene)[top:top + height, left:left + width] == 0).all()


def test_negatives_stay_away_from_the_digits():
    samples = load_samples(FIXTURES / "svhn_train")[:10]
    images = {s.path: Image.open(s.path).convert("L") for s in samples}
    negatives = negatives_of(samples, images, np.random.default_rng(0), 12)
    assert len(negatives) == 12
    walls = {s.path: union_box(list(s.boxes)) for s in samples}
    assert all(min(n.size) >= 24 for n in negatives[::2])  # photo regions beside the digits, not slivers
    assert walls  # every sample has a union box to keep away from
