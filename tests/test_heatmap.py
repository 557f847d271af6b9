"""The localiser's target and its decoding: what training teaches is what serving reads back."""
import numpy as np
import pytest
from PIL import Image

from model.heatmap import CHANNELS, GRID, LOCATOR_SIZE, STRIDE, decode, encode, iou, letterbox


@pytest.mark.parametrize("box", [(40.0, 30.0, 60.0, 36.0), (3.0, 100.0, 20.0, 14.0), (0.0, 0.0, 190.0, 150.0)])
def test_decoding_the_target_gives_back_the_box(box):
    target = encode([box])
    assert target.shape == (GRID, GRID, CHANNELS) and target[..., 0].max() == 1.0
    (score, found), = decode(target, scale=1.0)
    assert score == 1.0
    assert np.allclose(found, box, atol=1e-3)


def test_two_numbers_two_peaks_and_the_scale_back_to_the_picture():
    boxes = [(10.0, 10.0, 30.0, 20.0), (120.0, 140.0, 50.0, 30.0)]
    found = decode(encode(boxes), scale=0.5)
    assert len(found) == 2
    assert sorted(np.round(b, 3).tolist() for _, b in found) == sorted(np.round(np.array(boxes) / 0.5, 3).tolist())


def test_a_picture_without_number_has_an_empty_target_and_no_box():
    target = encode([])
    assert not target.any()
    assert decode(target, scale=1.0) == []


def test_letterbox_keeps_the_aspect_and_reports_the_scale():
    square, scale = letterbox(Image.new("RGB", (800, 400), (200, 10, 10)))
    assert square.size == (LOCATOR_SIZE, LOCATOR_SIZE) and square.mode == "L"
    assert scale == LOCATOR_SIZE / 800
    pixels = np.asarray(square)
    assert (pixels == pixels[0, 0]).all()  # the padding takes the picture's own grey


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)


def test_stride_divides_the_input():
    assert GRID * STRIDE == LOCATOR_SIZE
