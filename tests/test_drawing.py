"""Drawings: the ink's box and its pieces (model/drawing.py), and how the pipeline reads them."""
import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from model.drawing import Sheet, box_of
from model.pipeline import joined
from model.runtime import Reading
from scripts.pen import pen_drawing
from tests.conftest import encode


def sheet(strokes, size=(300, 120), paper=245, ink=30) -> Image.Image:
    """Lines ((x0, y0, x1, y1), ...) drawn 6 pixels wide, as the pad draws them."""
    image = Image.new("L", size, paper)
    draw = ImageDraw.Draw(image)
    for line in strokes:
        draw.line(line, fill=ink, width=6)
    return image.convert("RGB")


# Three "digits" with gaps between them, and a stray dot (a tap on the pad) at the bottom right.
ONE, SEVEN_TOP, SEVEN_STEM, FOUR = (40, 20, 40, 100), (80, 20, 130, 20), (130, 20, 100, 100), (170, 20, 170, 100)
DOT = (280, 110, 281, 110)


def test_the_ink_box_and_its_pieces_left_to_right():
    image = sheet([SEVEN_STEM, ONE, SEVEN_TOP, FOUR])
    drawing = Sheet.of(image)
    left, top, width, height = drawing.box()
    assert 34 <= left <= 38 and 14 <= top <= 18 and 170 <= left + width <= 176 and 100 <= top + height <= 106
    found = drawing.pieces
    assert len(found) == 3  # the seven's two strokes overlap in columns: one piece
    assert [box[0] for box in found] == sorted(box[0] for box in found)
    assert found[1][0] < 85 and found[1][0] + found[1][2] > 128


def test_a_stray_dot_is_no_piece_and_light_ink_on_dark_counts_too():
    assert len(Sheet.of(sheet([ONE, FOUR, DOT])).pieces) == 2
    assert len(Sheet.of(sheet([ONE, FOUR], paper=20, ink=230)).pieces) == 2


@pytest.mark.parametrize("paper", [255, 128, 0])
def test_a_plain_sheet_has_no_ink(paper):
    image = Image.new("RGB", (200, 100), (paper,) * 3)
    assert Sheet.of(image).box() is None and Sheet.of(image).pieces == []


def test_a_faint_pen_is_ink_and_so_is_a_jpeg_of_the_drawing():
    assert len(Sheet.of(sheet([ONE, FOUR], ink=225)).pieces) == 2  # 20 grey levels on a 245 sheet
    buffer = io.BytesIO()
    sheet([ONE, SEVEN_TOP, SEVEN_STEM, FOUR]).save(buffer, "JPEG", quality=75)
    assert len(Sheet.of(Image.open(buffer)).pieces) == 3


def test_a_piece_is_cut_out_without_its_neighbours_ink():
    # A one and a four a few pixels either side of the seven: apart, but inside its grown box.
    image = sheet([(66, 20, 66, 100), SEVEN_TOP, SEVEN_STEM, (144, 20, 144, 100)])
    drawing = Sheet.of(image)
    _, seven, _ = drawing.pieces
    left, top, width, height = seven
    plain = np.asarray(image.convert("L").crop((round(left - 0.3 * width), top, round(left + 1.3 * width), top + height)))
    assert plain[:, :10].min() < 100 and plain[:, -10:].min() < 100  # a plain crop takes in both neighbours
    cut = np.asarray(drawing.cut_out(seven))
    # The cut holds the seven alone.
    assert cut.shape == (round(seven[3] * 1.6), round(seven[2] * 1.6))
    left_margin, right_margin = round(0.3 * seven[2]), round(0.3 * seven[2])
    assert cut[:, :left_margin - 1].min() == 245 and cut[:, -right_margin + 1:].min() == 245
    assert cut.min() < 100  # the seven itself is there


def test_pieces_read_one_by_one_make_one_number():
    def reading(number, confidence):
        rows = [[0.9 if d == int(c) else 0.01 for d in range(11)] for c in number] + [[0.0] * 10 + [1.0]] * (5 - len(number))
        return Reading(number, confidence, False, [0.0] * 6, rows, 0.5)

    number = joined([reading("1", 0.9), reading("74", 0.8)], threshold=0.7)
    assert number.number == "174" and number.confidence == pytest.approx(0.72) and number.confident
    assert number.length_probs == [] and len(number.digit_probs) == 3 and number.model_ms == 1.0
    assert not joined([reading("1", 0.9), reading("7", 0.5)], threshold=0.7).confident


@pytest.fixture(scope="module")
def pipeline(app):
    return app.extensions["pipeline"]


def test_pen_drawn_numbers_are_read(pipeline):
    """Every digit, alone and in numbers of 2 to 4, drawn with a pen unlike MNIST's: a fixed set."""
    numbers = [str(d) for d in range(10)] + ["12", "385", "210", "4096", "7531", "86", "2048"]
    readings = {n: pipeline.read_drawing(pen_drawing(n)) for n in numbers}
    wrong = {n: a.number for n, a in readings.items() if a.number != n}
    assert len(wrong) <= 1, wrong
    for answer in readings.values():
        assert answer.found and answer.best.score == 1.0 and answer.model_ms > 0
        assert 1 <= len(answer.candidates) <= 2


def test_a_blank_sheet_is_no_number(pipeline):
    answer = pipeline.read_drawing(Image.new("RGB", (400, 200), "white"))
    assert not answer.found and answer.number == "" and answer.best is None and answer.candidates == []


def pen_marks(*lines, width=16) -> Image.Image:
    """Lines on the pad's 480x240 sheet with its 16-pixel pen and its round ends (lineCap 'round')."""
    image = Image.new("RGB", (480, 240), "white")
    draw = ImageDraw.Draw(image)
    for x0, y0, x1, y1 in lines:
        draw.line((x0, y0, x1, y1), fill="#111", width=width)
        for x, y in ((x0, y0), (x1, y1)):
            draw.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill="#111")
    return image


def test_wide_gaps_between_pieces_are_closed_up_to_the_widest_learnt():
    # Two strokes 140 pixels apart, 100 tall: the gap is cut to WIDEST_GAP of the ink's height;
    # the margins around the ink and a gap already narrow enough are left as they are.
    from model.drawing import WIDEST_GAP

    drawing = Sheet.of(pen_marks((100, 70, 100, 170), (240, 70, 240, 170)))
    closed = drawing.closed_up()
    (left, _, _, height), (right, *_) = drawing.pieces
    (closed_left, *_), (closed_right, *_) = closed.pieces
    assert closed_left == left and closed_right - (closed_left + drawing.pieces[0][2]) == round(WIDEST_GAP * height)
    assert closed.grey.width == drawing.grey.width - (right - left - drawing.pieces[0][2] - round(WIDEST_GAP * height))
    near = Sheet.of(pen_marks((100, 70, 100, 170), (140, 70, 140, 170)))
    assert near.closed_up() is near


@pytest.mark.parametrize("size", [(120, 40), (200, 40), (300, 60)])
def test_closing_up_a_bold_tight_drawing_keeps_its_sheet(pipeline, size):
    # Two bold bars in a tight crop: closed up, ink is half the picture or more, and the sheet's
    # grey taken again would be the ink's (read as a confident 1, or no ink box at all: a 500).
    width, height = size
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    for left in (0, width - width // 6):
        draw.rectangle((left, 0, left + width // 6 - 1, height - 1), fill=0)
    drawing = Sheet.of(image.convert("RGB"))
    closed = drawing.closed_up()
    assert closed.paper == drawing.paper == 255 and closed.box() is not None
    pipeline.read_drawing(image.convert("RGB"))  # answers, whatever it reads


def test_digits_drawn_far_apart_are_read_as_drawn_close(pipeline):
    # "11" as two plain strokes across the pad: read whole, the reader saw two thin marks far
    # apart in a wide strip, beyond the gaps it learnt from, and read 111.
    for gap in (80, 140, 200):
        answer = pipeline.read_drawing(pen_marks((140, 70, 140, 170), (140 + gap, 70, 140 + gap, 170)))
        assert answer.number == "11", gap


@pytest.mark.parametrize("lines", [[(240, 120, 240, 120)], [(240, 118, 240, 122)], [(150, 120, 330, 120)],
                                   [(230, 120, 250, 120)]], ids=["tap", "tap that moved 4 px", "dash", "short dash"])
def test_a_tap_or_a_dash_is_no_number(pipeline, lines):
    # The reader, shown a tap's dot enlarged to its whole input, read a confident 0, and a dash a 1.
    assert Sheet.of(pen_marks(*lines)).box() is None
    answer = pipeline.read_drawing(pen_marks(*lines))
    assert not answer.found and answer.number == ""


def test_the_tap_rule_sits_between_a_dragged_tap_and_the_squattest_digits():
    # The pad's pen dragged 5 px is a tap; a stroke 1.5 pen widths tall (as squat as the boldest
    # one-piece MNIST digits, 1.41) is ink to read. FLATTEST lies in that thin gap.
    def mark(drag: int) -> bool:
        drawing = Sheet.of(pen_marks((240, 120 - drag / 2, 240, 120 + drag / 2)))
        (piece,) = drawing.pieces
        return drawing.is_mark(piece)

    assert mark(0) and mark(5)
    assert not mark(8) and not mark(16)


def test_short_strokes_and_a_dash_beside_digits_are_still_read(pipeline):
    # A 1 under 3 pen widths tall is still a digit; a dash among digits is no single mark.
    assert pipeline.read_drawing(pen_marks((240, 100, 240, 140))).number == "1"
    assert Sheet.of(pen_marks((100, 60, 100, 180), (150, 120, 200, 120), (260, 60, 260, 180))).box() is not None


def marked(number: str, *marks) -> Image.Image:
    """`number` drawn with a pen 120 pixels high, with room around it for marks ((x0, y0, x1, y1) in
    the drawing's pixels, drawn as the pad's 16-pixel pen draws) left by accident."""
    drawing = pen_drawing(number)
    image = Image.new("RGB", (drawing.width + 160, drawing.height + 120), "white")
    image.paste(drawing, (0, 120))
    draw = ImageDraw.Draw(image)
    for x0, y0, x1, y1 in marks:
        draw.line((x0, y0, x1, y1), fill="black", width=16)
        for x, y in ((x0, y0), (x1, y1)):
            draw.ellipse((x - 8, y - 8, x + 8, y + 8), fill="black")
    return image


def test_a_mark_apart_from_the_number_is_taken_off_and_nothing_else():
    plain = Sheet.of(marked("385"))
    right, above = plain.grey.width - 60, 40
    for mark in ((right, 200, right, 200), (right, 200, right + 10, 212), (60, above, 74, above)):
        drawing = Sheet.of(marked("385", mark)).without_marks()
        assert (drawing.ink == plain.ink).all(), mark
        assert (np.asarray(drawing.grey) == np.asarray(plain.grey)).all(), mark
    # Not a mark: a tap close to the number (a 1's flag drawn apart, a digit's own broken-off piece).
    ink_right = box_of(plain.ink)[0] + box_of(plain.ink)[2]
    close = Sheet.of(marked("385", (ink_right + 14, 220, ink_right + 14, 220)))
    assert close.without_marks() is close
    # Not marks, though small and apart: a faint blob and a thin dash (pieces of a faint or broken
    # digit, as MNIST's drawings have them).
    for faint, width in ((200, 16), (30, 4)):
        image = marked("385")
        ImageDraw.Draw(image).line((right, 200, right, 214), fill=(faint,) * 3, width=width)
        drawing = Sheet.of(image)
        assert drawing.without_marks() is drawing, (faint, width)
    # Nothing to take off: a lone tap (box() says it is no number), digits of a size, no ink at all.
    for image in (pen_marks((240, 120, 240, 120)), pen_marks((100, 60, 100, 180), (200, 60, 200, 180)),
                  Image.new("RGB", (100, 50), "white")):
        drawing = Sheet.of(image)
        assert drawing.without_marks() is drawing


def test_a_picture_of_more_blobs_than_a_drawing_has_is_not_tidied(monkeypatch):
    # Each blob is compared with every other: a grid of 16,000 dots beside a line, sent as a drawing,
    # took minutes of a worker. Past MOST_BLOBS the picture is read as it is.
    import model.drawing

    drawing = Sheet.of(marked("385", (490, 200, 490, 200)))
    assert drawing.without_marks() is not drawing  # the tap beside 3, 8 and 5 goes
    monkeypatch.setattr(model.drawing, "MOST_BLOBS", 3)
    assert drawing.without_marks() is drawing


def test_a_tap_or_a_flick_beside_a_number_adds_no_digit(pipeline):
    # The pad's pen left a tap or a short flick 25 pixels or more from the number: read with it, the
    # number gained a digit, often with confidence (3 read 30 at 99.9%; the pad review of session 30).
    for number in ("385", "7", "42"):
        width = pen_drawing(number).width
        for mark in ((width + 80, 200, width + 80, 200), (width + 60, 150, width + 72, 140), (30, 40, 44, 40)):
            answer = pipeline.read_drawing(marked(number, mark))
            left, top, box_width, _ = answer.best.box
            assert answer.number == number, (number, mark)
            assert top >= 120 and left + box_width <= width, (number, mark)  # the box is the number's alone


def test_the_api_reads_the_pad_as_a_drawing(client, app):
    png = encode(pen_drawing("385"))
    body = client.post("/predict?kind=drawing", data=png, content_type="image/png").get_json()
    assert body["number"] == "385" and body["found"] and body["model"] == app.extensions["pipeline"].drawing_reader.name
    left, top, width, height = body["box"]  # the ink, with the pen's round ends
    assert 30 <= left <= 40 and 30 <= top <= 40 and abs(height - 120) <= 12
    assert abs(width - (pen_drawing("385").width - 80)) <= 12
    assert all(len(row) == 11 for row in body["probabilities"]["digits"])
    blank = client.post("/predict?kind=drawing", data=encode(Image.new("RGB", (300, 200), "white")), content_type="image/png")
    assert blank.status_code == 200 and blank.get_json()["found"] is False and blank.get_json()["probabilities"] is None


def test_light_strokes_on_a_transparent_canvas_are_read(client):
    # The strokes of a canvas whose page is dark, as toDataURL() gives them: white, on transparent pixels.
    ink = 255 - np.asarray(pen_drawing("385").convert("L"))
    white = np.full_like(ink, 255)
    canvas = Image.fromarray(np.dstack([white, white, white, ink]), "RGBA")
    body = client.post("/predict?kind=drawing", data=encode(canvas), content_type="image/png").get_json()
    assert body["found"] and body["number"] == "385"


def test_an_unknown_kind_is_a_400(client):
    response = client.post("/predict?kind=sketch", data=encode(pen_drawing("7")), content_type="image/png")
    assert response.status_code == 400 and "kind=drawing" in response.get_json()["error"]


def test_pieces_that_agree_on_the_count_win_on_confidence_and_box_each_digit(client, app, monkeypatch):
    """With a stand-in reader: the whole ink read "385" at 0.6, each piece as its digit at 0.99."""
    pipeline = app.extensions["pipeline"]
    drawing = pen_drawing("385")
    pieces = Sheet.of(drawing).pieces
    assert len(pieces) == 3

    def read(cut, whole="385"):
        if cut.width > 2 * cut.height:  # wider than any one digit: the whole ink
            return Reading(whole, 0.6, False, [0.0] * 6, [[0.0] * 11] * 5, 0.1)
        digit = "385"[len(calls)]
        calls.append(digit)
        return Reading(digit, 0.99, True, [0.0] * 6, [[0.0] * 11] * 5, 0.1)

    calls = []
    monkeypatch.setattr(pipeline.drawing_reader, "read", read)
    body = client.post("/predict?kind=drawing", data=encode(drawing), content_type="image/png").get_json()
    assert body["number"] == "385" and body["confidence"] == pytest.approx(0.99 ** 3, abs=1e-4)
    assert [c["number"] for c in body["candidates"]] == ["385", "385"] and body["probabilities"]["length"] == []
    assert body["digit_boxes"] == [[round(v) for v in box] for box in pieces]
    left, top, width, height = body["box"]
    for x, y, w, h in body["digit_boxes"]:
        assert left <= x and x + w <= left + width and top <= y and y + h <= top + height

    calls.clear()  # a whole reading with another count wins, however unsure: the pieces may split a digit
    monkeypatch.setattr(pipeline.drawing_reader, "read", lambda cut: read(cut, whole="38"))
    body = client.post("/predict?kind=drawing", data=encode(drawing), content_type="image/png").get_json()
    assert body["number"] == "38" and body["digit_boxes"] is None


def test_a_tap_beside_a_speck_is_still_no_number_and_a_huge_piece_is_measured_small(monkeypatch):
    import model.drawing

    image = pen_marks((240, 118, 240, 122))
    image.putpixel((400, 20), (0, 0, 0))  # a speck is no piece, and no part of the tap's measure
    assert Sheet.of(image).box() is None
    # Any upload can be read as a drawing: a one-piece outline 2,048 pixels high took 731 erosions
    # of the whole picture (1.4 s); measured at MARK_SIDE pixels, it takes at most 256 / 2.8.
    sizes = []
    erode = model.drawing.eroded
    monkeypatch.setattr(model.drawing, "eroded", lambda mask, step: sizes.append(mask.shape) or erode(mask, step))
    outline = Image.new("RGB", (2048, 2048), "white")
    ImageDraw.Draw(outline).rectangle((4, 4, 2043, 2043), outline="black", width=6)
    assert Sheet.of(outline).box() is not None
    assert 0 < len(sizes) <= 92 and max(max(shape) for shape in sizes) <= 258
