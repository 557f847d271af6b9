"""The font-rendered house numbers: which fonts are used, and pictures whose labels match their pixels."""
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image

from model.render import DIGITS, LETTERS, FontNumbers, _font, _glyph, _shape, font_files, usable_fonts

MATPLOTLIB_FONTS = sorted((Path(matplotlib.get_data_path()) / "fonts" / "ttf").glob("*.ttf"))


@pytest.fixture(scope="module")
def fonts():
    return usable_fonts(MATPLOTLIB_FONTS)


def test_fonts_without_digits_are_left_out(fonts, tmp_path):
    names = {f.name for f in fonts}
    assert {"DejaVuSans.ttf", "DejaVuSerif.ttf", "cmr10.ttf"} <= names
    # cmex10 maps digits to pieces of big brackets; LastResort draws every glyph as a "missing" box
    assert not names & {"cmex10.ttf", "LastResortHE-Regular.ttf"}
    broken = tmp_path / "broken.ttf"
    broken.write_text("not a font")
    assert usable_fonts([broken, *MATPLOTLIB_FONTS[:1]]) == usable_fonts(MATPLOTLIB_FONTS[:1])
    assert set(fonts) <= set(font_files([str(tmp_path)]))  # matplotlib's fonts come without any font package


def test_rendered_numbers_are_well_formed(fonts):
    numbers = FontNumbers(fonts)
    lengths = set()
    for seed in range(40):
        canvas, digits, boxes = numbers.compose(np.random.default_rng(seed))
        assert canvas.mode == "L" and 1 <= len(digits) <= 5 and len(boxes) == len(digits)
        lengths.add(len(digits))
        for left, top, width, height in boxes:
            assert left >= 0 and top >= 0 and left + width <= canvas.width and top + height <= canvas.height
        assert [b[0] for b in boxes] == sorted(b[0] for b in boxes)
    assert {1, 2, 3} <= lengths


def test_each_box_holds_the_labelled_digit(fonts):
    """Cut out every digit box and find the nearest digit of the font that drew it: it is the label."""
    font = next(f for f in fonts if f.name == "DejaVuSans.ttf")
    templates = np.stack([_shape(_glyph(_font(font, 32), d)) for d in DIGITS])
    numbers = FontNumbers([font])
    right = total = 0
    for seed in range(30):
        canvas, digits, boxes = numbers.compose(np.random.default_rng(seed))
        for digit, (left, top, width, height) in zip(digits, boxes):
            cut = canvas.crop((left, top, left + width, top + height)).resize((16, 24), Image.Resampling.BILINEAR)
            cut = np.asarray(cut, np.float32).ravel()
            cut = (cut - cut.mean()) / max(float(np.linalg.norm(cut - cut.mean())), 1e-6)
            # dark ink on a light plate correlates negatively with the light-on-black template
            right += int(np.abs(templates @ cut).argmax()) == digit
            total += 1
    assert right / total >= 0.95, f"{right} of {total} boxes hold their labelled digit"


def test_rendering_is_seeded(fonts):
    numbers = FontNumbers(fonts)
    first, again, other = (numbers.compose(np.random.default_rng(seed)) for seed in (5, 5, 6))
    assert np.array_equal(np.asarray(first[0]), np.asarray(again[0])) and first[1:] == again[1:]
    assert first[0].size != other[0].size or not np.array_equal(np.asarray(first[0]), np.asarray(other[0]))


def test_lettering_is_letters_only_none_that_pass_for_a_digit(fonts):
    assert not set(LETTERS) & set(DIGITS + "OoIilSsBZzGgqbDQ") and len(LETTERS) == 52 - 16
    numbers = FontNumbers(fonts)
    first, again, other = (np.asarray(numbers.lettering(np.random.default_rng(seed))) for seed in (5, 5, 6))
    assert np.array_equal(first, again) and (first.shape != other.shape or not np.array_equal(first, other))
    for seed in range(10):
        sign = np.asarray(numbers.lettering(np.random.default_rng(seed)), np.float32)
        assert sign.ndim == 2 and sign.std() > 5  # ink on a ground, not a blank


def test_no_font_is_a_clear_error():
    with pytest.raises(ValueError, match="no usable font"):
        FontNumbers([])


def test_font_digits_come_as_mnist_stores_digits(fonts):
    """Glyphs for the drawing reader's handwriting: light on black in 28x28, ten per font, each its own digit."""
    from model.handwriting import font_digits

    images, labels = font_digits(fonts)
    assert images.shape == (10 * len(fonts), 28, 28) and images.dtype == np.uint8
    assert labels.tolist() == list(range(10)) * len(fonts)
    font = next(i for i, f in enumerate(fonts) if f.name == "DejaVuSans.ttf")
    templates = np.stack([_shape(_glyph(_font(fonts[font], 32), d)) for d in DIGITS])
    for digit in range(10):
        assert int((templates @ _shape(images[10 * font + digit])).argmax()) == digit
        assert images[10 * font + digit, 4:24].any() and not images[10 * font + digit, :3].any()
