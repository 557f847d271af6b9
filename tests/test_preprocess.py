import numpy as np
import pytest
from PIL import Image

from model.decode import BLANK, confidence_threshold, decode
from model.preprocess import INPUT_SIZE, grow_box, protocol_crop, to_input, union_box


def test_union_and_grow():
    box = union_box([(10, 20, 5, 10), (14, 18, 6, 14)])
    assert box == (10, 18, 10, 14)
    assert grow_box(box, 0.3) == pytest.approx((7.0, 13.8, 16.0, 22.4))


def test_protocol_crop_stays_inside_the_photo():
    image = Image.new("RGB", (100, 50))
    crop = protocol_crop(image, [(0, 0, 20, 40), (20, 5, 20, 40)])
    # union is 40x45 at the corner: grown 30% it would leave the photo on the left, top and bottom
    assert crop.size == (40 + 12, 50)


def test_to_input_shape_and_contrast():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (80, 120, 3), dtype=np.uint8))
    x = to_input(image)
    assert x.shape == (INPUT_SIZE, INPUT_SIZE, 1) and x.dtype == np.float32
    assert abs(x.mean()) < 1e-4 and abs(x.std() - 1) < 1e-3


def test_box_reads_the_same_pixels_as_a_cropped_upload():
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 255, (90, 140), dtype=np.uint8)).convert("RGB")
    box = (20, 10, 64, 64)
    assert np.allclose(to_input(image, box=box), to_input(image.crop((20, 10, 84, 74))), atol=1e-4)


def test_flat_image_does_not_blow_up_noise():
    x = to_input(Image.new("RGB", (40, 40), (120, 120, 120)))
    assert np.all(np.isfinite(x)) and np.abs(x).max() == 0


def test_large_photo_is_shrunk_without_aliasing():
    # 1-pixel stripes alias into a strong pattern when sampled without filtering: reduced first, they average out
    stripes = np.tile(np.array([0, 255], dtype=np.uint8), (800, 800))
    assert np.abs(to_input(Image.fromarray(stripes))).max() < 0.5


def test_decode_reads_length_then_digits():
    length = np.array([0.0, 0.1, 0.8, 0.1, 0.0, 0.0])
    digits = np.full((5, 11), 0.01)
    digits[0, 4], digits[1, 2], digits[2, BLANK] = 0.9, 0.5, 0.9
    number, confidence = decode(length, digits)
    assert number == "42"
    assert np.isclose(confidence, 0.8 * 0.9 * 0.5)


def test_decode_empty_number():
    length = np.array([0.7, 0.3, 0, 0, 0, 0])
    assert decode(length, np.full((5, 11), 1 / 11)) == ("", 0.7)


def test_confidence_threshold_keeps_the_accurate_top():
    confidences = np.array([0.99, 0.95, 0.9, 0.8, 0.7, 0.6])
    correct = np.array([True, True, True, False, True, False])
    assert confidence_threshold(confidences, correct, 1.0) == 0.9
    assert confidence_threshold(confidences, correct, 0.8) == 0.7
    assert confidence_threshold(confidences, ~correct, 0.5) == 1.0  # never accurate enough: nothing is confident
