"""The page in a real browser: Debian's Chromium driven by Playwright against the app on a live
server, with the bundled model. Drawings are made of real pointer moves along the strokes of a
single-line (Hershey) font.

Skipped when /usr/bin/chromium is missing, except under CI=1, where that is a failure.
"""
from __future__ import annotations

import base64
import email.parser
import io
import os
import threading
from pathlib import Path

import pytest
from PIL import Image
from werkzeug.serving import WSGIRequestHandler, make_server

from model.preprocess import protocol_crop
from scripts.pen import draw
from tests.conftest import FIXTURES, TEST_CONFIG

CHROMIUM = Path("/usr/bin/chromium")
# The closed network of CI and dev machines makes Chromium misbehave without these.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1200, "height": 900}
PHONE = {"width": 360, "height": 740}
TIMEOUT_MS = 20_000  # the machine is shared: generous waits, never fixed sleeps
UPLOAD_LIMIT = TEST_CONFIG["MAX_CONTENT_LENGTH"]  # the live server's, which the page is given


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


@pytest.fixture(scope="module")
def live_server(app):
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("CI") == "1":
            pytest.fail(message + ": CI must run the browser tests")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield browser
        browser.close()


class Page:
    """A fresh browser page on the app that records what would go wrong silently: script
    errors, CSP violations (console errors) and alert/confirm dialogs."""

    def __init__(self, browser, url: str, viewport: dict, **context_options):
        self.context = browser.new_context(viewport=viewport, **context_options)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.url = url
        self.problems: list[str] = []
        self.requests: list[str] = []
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("console", self.console)
        self.page.on("dialog", lambda d: (self.problems.append(f"dialog: {d.message}"), d.dismiss()))
        self.page.on("request", lambda r: self.requests.append(r.url))

    def console(self, message):
        # Chromium logs every 4xx answer and aborted request as a console error; those are the
        # tests' own doing. Anything else (a CSP refusal, a script error) is a problem.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.problems.append(f"console: {message.text}")

    def open(self):
        self.page.goto(self.url + "/")
        return self.page


@pytest.fixture()
def open_page(browser, live_server):
    pages = []

    def opener(viewport=DESKTOP, **options):
        page = Page(browser, live_server, viewport, **options)
        pages.append(page)
        return page

    yield opener
    for page in pages:
        page.context.close()
    problems = [p for page in pages for p in page.problems]
    assert not problems, problems


@pytest.fixture()
def page(open_page):
    return open_page().open()


@pytest.fixture(scope="module")
def photo_210(test_samples, tmp_path_factory) -> Path:
    """SVHN test photo 2 (number 210), cropped around its number as in the crop protocol."""
    sample = test_samples[1]
    assert sample.number == "210"
    path = tmp_path_factory.mktemp("photos") / "house-210.png"
    with Image.open(sample.path) as image:
        protocol_crop(image.convert("RGB"), list(sample.boxes)).save(path)
    return path


def reading(page) -> str:
    page.wait_for_selector("#reading:not([hidden])")
    return page.text_content("#number")


def wait_for_number(page, expected: str) -> None:
    """Waits until the page shows `expected`: readings of a drawing still being drawn may come first."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function("n => !document.getElementById('reading').hidden"
                               " && document.getElementById('number').textContent === n", arg=expected)
    except PlaywrightTimeout:
        shown = page.text_content("#number") if page.is_visible("#reading") else page.text_content("#error")
        pytest.fail(f"the page shows {shown!r}, not {expected!r}")


def server_reading(client, data: bytes) -> dict:
    return client.post("/predict", data=data, content_type="image/png").get_json()


# ---------- Drawing with real pointer moves ----------

def pad_pixels(page) -> str:
    return page.evaluate("document.getElementById('pad').toDataURL()")


# ---------- Tests ----------

def test_first_render_needs_only_its_own_files(open_page):
    browser_page = open_page()
    page = browser_page.open()
    page.wait_for_load_state("networkidle")
    origin = browser_page.url
    assert browser_page.requests, "no requests recorded"
    for url in browser_page.requests:
        assert url.startswith(origin + "/"), url
        path = url[len(origin):]
        assert path == "/" or path.startswith("/static/"), url
    assert page.is_visible("#empty") and page.is_hidden("#reading")
    # The gallery is in the page itself: its thumbnails and true numbers need no request.
    assert page.locator(".sample").count() >= 10


def test_upload_shows_preview_at_once_then_the_number(page, photo_210):
    held = []
    page.route("**/predict?*", lambda route: held.append(route))  # hold the answer back
    page.set_input_files("#file", str(photo_210))
    page.wait_for_selector("#seen:not([hidden])")
    assert page.text_content("#busy") == "Reading…"
    assert page.is_hidden("#reading")
    for _ in range(200):  # the route's callback arrives with the browser's next event
        if held:
            break
        page.wait_for_timeout(50)
    assert len(held) == 1
    held[0].continue_()
    assert reading(page) == "210"
    assert page.text_content("#busy") == ""
    assert page.locator("#seen-img").evaluate("img => img.naturalWidth") > 0
    assert "house-210.png" in page.text_content("#seen-caption")
    rows = page.locator("#probs tbody tr")
    assert rows.count() == 4  # length and three digits
    assert rows.nth(0).locator("td").first.text_content() == "3 digits"
    assert [rows.nth(i).locator("td").first.text_content() for i in (1, 2, 3)] == ["2", "1", "0"]
    assert page.text_content("#model-ms").endswith(" ms")
    assert page.text_content("#confidence").endswith("%")


def test_upload_matches_the_server(page, client, photo_210):
    body = server_reading(client, photo_210.read_bytes())
    with page.expect_request("**/predict?kind=photo"):
        page.set_input_files("#file", str(photo_210))
    assert reading(page) == body["number"]
    assert page.text_content("#confidence") == f"{round(body['confidence'] * 100)}%"
    assert ("Not sure" in page.text_content("#sureness")) == (not body["confident"])


@pytest.mark.parametrize("number", ["385", "210"])
def test_drawing_is_read_by_itself(page, number):
    with page.expect_request("**/predict?kind=drawing") as posted:
        draw(page, number)
    # No click: the page reads a moment after the last stroke, as a drawing (the ink is the number).
    wait_for_number(page, number)
    assert posted.value.method == "POST"
    assert page.text_content("#seen-caption") == "Your drawing"
    # A row per digit, and one for the length unless the digits were read one by one.
    assert page.locator("#probs tbody tr").count() in (len(number), 1 + len(number))
    assert f"{number} (" not in page.text_content("#others")  # the same reading is not offered again
    assert page.is_hidden("#pad-answer")  # beside the result card on a wide screen: said once


@pytest.mark.parametrize("moved", [0, 6])
def test_a_tap_on_the_pad_is_no_number(page, moved):
    # It was read as a confident 0: the reader saw the dot enlarged to its whole input.
    page.locator("#pad").scroll_into_view_if_needed()
    pad = page.locator("#pad").bounding_box()
    x, y = pad["x"] + pad["width"] / 2, pad["y"] + pad["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x, y + moved * pad["height"] / 240)
    page.mouse.up()
    wait_for_number(page, "No number found")


def test_a_stroke_begun_during_a_read_drops_that_read(page):
    # A finger lifted a second between a 7's two strokes: the first stroke's read is under way when
    # the second begins, and its answer ("1") must not show while the visitor draws.
    held = []
    page.route("**/predict?kind=drawing", lambda route: held.append(route))
    page.locator("#pad").scroll_into_view_if_needed()
    pad = page.locator("#pad").bounding_box()
    x, y = pad["x"] + pad["width"] / 2, pad["y"] + pad["height"] / 2

    def line(dx, dy):
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x + dx, y + dy, steps=5)

    line(0, 60)
    page.mouse.up()
    page.wait_for_function("() => document.getElementById('busy').textContent !== ''")  # read after the pause
    line(40, 0)  # the next stroke begins, still held down
    try:
        held[0].fulfill(json=canned("1"))
    except Exception:  # noqa: BLE001 - the page has already given that request up
        pass
    page.wait_for_timeout(300)
    assert page.is_hidden("#reading") and page.text_content("#busy") == ""
    page.mouse.up()
    for _ in range(100):  # the stroke's end reads the pad again
        if len(held) == 2:
            break
        page.wait_for_timeout(50)
    held[1].fulfill(json=canned("7"))
    wait_for_number(page, "7")


# The pad's picture held until the test lets it go: taking it is asynchronous (canvas.toBlob), and
# in Chromium after a finger's stroke it waits for an idle moment, up to a second.
HOLD_PICTURES = """
(() => {
  const toBlob = HTMLCanvasElement.prototype.toBlob;
  window.heldPictures = [];
  HTMLCanvasElement.prototype.toBlob = function (callback, ...rest) {
    toBlob.call(this, (blob) => window.heldPictures.push(() => callback(blob)), ...rest);
  };
  window.letPicturesGo = () => { for (const go of window.heldPictures.splice(0)) go(); };
})();
"""


def page_holding_pictures(open_page):
    browser_page = open_page()
    browser_page.context.add_init_script(HOLD_PICTURES)
    return browser_page.open()


def test_clear_while_the_drawing_is_being_taken_reads_nothing(open_page):
    # Clear tapped a second after the last stroke, when the automatic read was taking the pad's
    # picture: the cleared drawing was read, and its answer shown over an empty pad.
    page = page_holding_pictures(open_page)
    reads = []
    page.on("request", lambda request: reads.append(request.url) if "/predict" in request.url else None)
    draw(page, "42", fill=0.6)
    page.wait_for_function("() => window.heldPictures.length > 0")  # the pause is over: the picture is being taken
    page.click("#clear")
    page.evaluate("window.letPicturesGo()")
    page.wait_for_timeout(1500)
    assert reads == []
    assert page.is_hidden("#reading") and page.is_visible("#empty") and page.is_hidden("#pad-answer")


def test_a_stroke_begun_while_the_drawing_is_being_taken_drops_that_read(open_page):
    # A 7's second stroke begun as the first one's picture was being taken: the first stroke's answer
    # ("1") came while the visitor drew the bar.
    page = page_holding_pictures(open_page)
    reads = []
    page.on("request", lambda request: reads.append(request.url) if "/predict" in request.url else None)
    page.locator("#pad").scroll_into_view_if_needed()
    pad = page.locator("#pad").bounding_box()
    x, y = pad["x"] + pad["width"] / 2, pad["y"] + pad["height"] / 4
    page.mouse.move(x + 30, y)
    page.mouse.down()
    page.mouse.move(x - 30, y + 120, steps=5)
    page.mouse.up()
    page.wait_for_function("() => window.heldPictures.length > 0")
    page.mouse.move(x - 40, y)
    page.mouse.down()  # the bar begins
    page.mouse.move(x, y, steps=3)
    page.evaluate("window.letPicturesGo()")
    page.wait_for_timeout(1500)
    assert reads == []
    assert page.is_hidden("#reading") and page.text_content("#busy") == "" and page.is_hidden("#pad-answer")
    page.mouse.move(x + 30, y, steps=3)
    page.mouse.up()  # the stroke's end reads the whole 7
    page.wait_for_function("() => window.heldPictures.length > 0")
    page.evaluate("window.letPicturesGo()")
    wait_for_number(page, "7")
    assert len(reads) == 1


def test_a_sample_chosen_while_the_drawing_is_being_taken_keeps_its_answer(open_page, client):
    # A sample picked as the automatic read was taking the pad's picture: once taken, the picture was
    # sent anyway, aborted the sample's read and put the drawing's answer in its place.
    page = page_holding_pictures(open_page)
    drawings = []
    page.on("request", lambda request: drawings.append(request.url) if "kind=drawing" in request.url else None)
    draw(page, "4", fill=0.6)
    page.wait_for_function("() => window.heldPictures.length > 0")
    sample = page.locator(".sample").first
    src = sample.get_attribute("data-src")
    expected = server_reading(client, (Path(__file__).resolve().parent.parent / src.lstrip("/")).read_bytes())["number"]
    sample.click()
    page.evaluate("window.letPicturesGo()")
    page.wait_for_function("src => document.getElementById('seen-img').getAttribute('src') === src"
                           " && !document.getElementById('reading').hidden", arg=src)
    page.wait_for_timeout(1500)
    assert drawings == []
    assert page.get_attribute("#seen-img", "src") == src
    assert page.text_content("#number") == (expected or "No number found")


def test_a_photo_chosen_just_after_drawing_keeps_its_answer(page, photo_210):
    drawings = []
    page.on("request", lambda request: drawings.append(request.url) if "kind=drawing" in request.url else None)
    draw(page, "4", fill=0.6)
    page.set_input_files("#file", str(photo_210))  # within the drawing's pause before it is read
    wait_for_number(page, "210")
    # Past the 0.8 s pause, a pending read would have been sent (however slowly it were answered): none is.
    page.wait_for_timeout(1500)
    assert drawings == []
    assert page.text_content("#number") == "210" and page.text_content("#seen-caption").startswith("house-210.png")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_ink_lands_under_the_pointer(open_page, viewport):
    # The pointer was mapped through the canvas' border box, its picture fills the content box inside
    # the 2 px border: the ink landed up to 2 CSS pixels (3.4 of the pad's) off, towards the middle.
    page = open_page(viewport).open()
    left, top, width, height = page.eval_on_selector("#pad", "c => [c.clientLeft, c.clientTop, c.clientWidth, c.clientHeight]")
    for x, y in [(20, 20), (460, 220)]:
        page.locator("#pad").scroll_into_view_if_needed()
        pad = page.locator("#pad").bounding_box()
        page.mouse.move(pad["x"] + left + x * width / 480, pad["y"] + top + y * height / 240)
        page.mouse.down()
        page.mouse.up()  # a dot, centred where the mouse was
        centre = page.evaluate("""() => {
          const out = document.createElement('canvas'); out.width = 480; out.height = 240;
          const ctx = out.getContext('2d'); ctx.drawImage(document.getElementById('pad'), 0, 0, 480, 240);
          const d = ctx.getImageData(0, 0, 480, 240).data;
          let n = 0, sx = 0, sy = 0;
          for (let i = 0; i < 480 * 240; i++) if (d[i * 4] < 128) { n++; sx += i % 480 + 0.5; sy += Math.floor(i / 480) + 0.5; }
          return [sx / n, sy / n];
        }""")
        assert abs(centre[0] - x) < 0.75 and abs(centre[1] - y) < 0.75, (x, y, centre)
        page.click("#clear")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_stroke_begun_just_beside_the_pad_is_drawn(open_page, viewport):
    # Someone starting a 1 at the pad's top edge put the pointer down a few pixels above it, and the
    # whole stroke was lost; a press well away from the pad still draws nothing.
    page = open_page(viewport).open()
    page.locator("#pad").scroll_into_view_if_needed()
    blank = pad_pixels(page)
    pad = page.locator("#pad").bounding_box()
    x = pad["x"] + pad["width"] / 2
    page.mouse.move(x, pad["y"] - 40)
    page.mouse.down()
    page.mouse.up()
    page.wait_for_timeout(100)
    assert pad_pixels(page) == blank and page.is_disabled("#undo")
    page.mouse.move(x, pad["y"] - 8)
    page.mouse.down()
    page.mouse.move(x, pad["y"] + pad["height"] * 0.85, steps=8)
    page.mouse.up()
    assert pad_pixels(page) != blank and page.is_enabled("#undo")
    wait_for_number(page, "1")


def test_a_finger_put_down_just_above_the_pad_draws_its_stroke(open_page):
    # A touch is a pan of the page unless where it lands says otherwise: begun beside the pad, the
    # browser would scroll and cancel the stroke. Real touch events, through Chromium's protocol.
    page = open_page(PHONE, has_touch=True, is_mobile=True, device_scale_factor=2).open()
    page.locator("#pad").scroll_into_view_if_needed()
    blank, scrolled = pad_pixels(page), page.evaluate("scrollY")
    pad = page.locator("#pad").bounding_box()
    x, top = pad["x"] + pad["width"] / 2, pad["y"] - 8
    touch = page.context.new_cdp_session(page)
    touch.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": top}]})
    for step in range(1, 21):
        point = {"x": x, "y": top + step * (pad["height"] * 0.85 + 8) / 20}
        touch.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
    touch.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    assert page.evaluate("scrollY") == scrolled and pad_pixels(page) != blank
    wait_for_number(page, "1")


def test_undo_pressed_during_a_stroke_reads_nothing_until_its_end(page):
    # Undo by the keyboard (or another finger) while a stroke is drawn takes nothing off, but it scheduled
    # the automatic read: the half-drawn stroke was sent while the mouse was still down.
    reads = []
    page.on("request", lambda request: reads.append(request.url) if "/predict" in request.url else None)
    page.locator("#pad").scroll_into_view_if_needed()
    pad = page.locator("#pad").bounding_box()
    x, y = pad["x"] + pad["width"] / 2, pad["y"] + pad["height"] / 4
    page.mouse.move(x - 40, y)
    page.mouse.down()
    page.mouse.move(x, y, steps=3)
    page.mouse.up()  # a 7's bar
    page.wait_for_function("() => !document.getElementById('undo').disabled")
    page.focus("#undo")
    page.mouse.move(x + 30, y)
    page.mouse.down()  # its stem begins
    page.mouse.move(x + 5, y + 60, steps=3)
    page.keyboard.press("Enter")
    page.wait_for_timeout(1500)  # past the automatic read's pause
    assert reads == []
    page.mouse.move(x - 20, y + 120, steps=3)
    page.mouse.up()
    wait_for_number(page, "7")
    assert len(reads) == 1


def test_read_undo_and_clear_by_keyboard(page):
    blank = pad_pixels(page)
    draw(page, "4", fill=0.6)
    with_4 = pad_pixels(page)
    page.focus("#read")
    page.keyboard.press("Enter")
    assert reading(page) == "4"
    draw(page, "1", fill=0.3)  # one stroke: undo takes back one stroke
    assert pad_pixels(page) != with_4
    page.focus("#undo")
    page.keyboard.press("Enter")
    assert pad_pixels(page) == with_4
    page.focus("#clear")
    page.keyboard.press(" ")
    assert pad_pixels(page) == blank
    # The reading of a drawing that is gone goes too, and there is nothing left to undo.
    assert page.is_hidden("#reading") and page.is_visible("#empty")
    assert page.is_disabled("#undo") and page.is_disabled("#clear")
    # The button that disabled itself hands the focus on instead of dropping it to the top of the page.
    assert page.evaluate("document.activeElement.id") == "read"
    draw(page, "1", fill=0.3)
    page.focus("#undo")
    page.keyboard.press("Enter")
    assert page.is_disabled("#undo") and page.evaluate("document.activeElement.id") == "read"


def test_gallery_samples_say_right_or_wrong(page, client):
    samples = page.locator(".sample")
    for i in range(samples.count()):
        sample = samples.nth(i)
        truth = sample.get_attribute("data-number")
        src = sample.get_attribute("data-src")
        data = (Path(__file__).resolve().parent.parent / src.lstrip("/")).read_bytes()
        expected = server_reading(client, data)["number"]
        sample.click()
        page.wait_for_function(
            "src => document.getElementById('seen-img').getAttribute('src') === src"
            " && !document.getElementById('reading').hidden", arg=src)
        assert page.text_content("#number") == (expected or "No number found")
        verdict = page.text_content("#verdict")
        assert verdict == f"{'Right' if expected == truth else 'Wrong'}: the photo shows {truth}."
        assert page.text_content("#announce").endswith(" " + verdict)  # spoken, not only shown
        assert sample.get_attribute("aria-current") == "true"
    # The bundled reader may read every sample right: a misreading is canned to see it called wrong.
    page.route("**/predict?*", lambda route: route.fulfill(json=canned("9999", found=True, box=None, candidates=[])))
    first = samples.nth(0)
    first.click()
    page.wait_for_function("() => document.getElementById('number').textContent === '9999'")
    assert page.text_content("#verdict") == f"Wrong: the photo shows {first.get_attribute('data-number')}."


def test_non_image_upload_shows_the_error_in_the_page(page, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a photo")
    page.set_input_files("#file", str(text))
    page.wait_for_selector("#error:not([hidden])")
    assert "not an image" in page.text_content("#error")
    assert page.is_hidden("#reading") and page.is_hidden("#seen")
    assert page.text_content("#busy") == ""


def test_a_picture_the_browser_cannot_display_is_read_and_named(page):
    # Chromium cannot decode HEIC, an iPhone's own format; the server can. The answer then comes
    # with the file's name, not an empty frame where the picture would be.
    page.set_input_files("#file", str(FIXTURES / "heic" / "11-orientation6.heic"))
    assert reading(page) == "34"
    assert page.is_visible("#seen-caption") and page.is_hidden("#frame")
    caption = page.text_content("#seen-caption")
    assert "11-orientation6.heic" in caption and "cannot display" in caption
    page.set_input_files("#file", str(FIXTURES / "svhn_test" / "2.png"))  # the next picture shows again
    wait_for_number(page, "210")
    page.wait_for_selector("#frame:not([hidden])")
    assert "cannot display" not in page.text_content("#seen-caption")


def test_a_heic_over_the_pixel_limit_says_what_to_do(page, photo_210):
    # A 48-megapixel phone's HEIC: the browser cannot shrink it, so the server's 413 comes with a way out.
    error = f"The image holds a picture of 48,000,000 pixels; the limit is {TEST_CONFIG['MAX_IMAGE_PIXELS']:,} pixels."
    page.route("**/predict?*", lambda route: route.fulfill(status=413, json={"error": error}))
    page.set_input_files("#file", str(FIXTURES / "heic" / "11-orientation6.heic"))
    page.wait_for_selector("#error:not([hidden])")
    assert page.text_content("#error") == (error + " This browser could not shrink it before sending: take the photo "
                                           "at a lower resolution, or save it as a JPEG.")
    page.set_input_files("#file", str(photo_210))  # one it could shrink: the server's words alone
    page.wait_for_function("e => document.getElementById('error').textContent === e", arg=error)


def test_a_server_that_never_answers_is_given_up_on(open_page, photo_210):
    browser_page = open_page()
    browser_page.page.clock.install()
    page = browser_page.open()
    page.route("**/predict?*", lambda route: None)  # the request stays open, as with a stuck server
    with page.expect_request("**/predict?*"):
        page.set_input_files("#file", str(photo_210))
    page.clock.fast_forward(36_000)
    page.wait_for_selector("#error:not([hidden])")
    assert page.text_content("#error") == "The reader did not answer within 35 seconds. Try again in a moment."
    assert page.text_content("#busy") == ""


def test_a_big_picture_unanswered_is_blamed_on_the_connection(open_page, tmp_path):
    # On one bar of signal a phone photo takes longer to send than the page waits: "try again in a
    # moment" would fail the same way.
    noisy = tmp_path / "noisy.png"
    Image.frombytes("RGB", (600, 400), os.urandom(600 * 400 * 3)).save(noisy)  # noise: no encoding makes it small
    browser_page = open_page()
    browser_page.page.clock.install()
    page = browser_page.open()
    page.route("**/predict?*", lambda route: None)
    with page.expect_request("**/predict?*"):
        page.set_input_files("#file", str(noisy))
    page.clock.fast_forward(36_000)
    page.wait_for_selector("#error:not([hidden])")
    assert page.text_content("#error").startswith("No answer within 35 seconds: on a slow connection a picture of 0.")
    assert "smaller photo" in page.text_content("#error")


def test_a_server_that_stalls_after_its_headers_is_given_up_on(open_page, photo_210, live_server):
    # The clock runs until the whole answer is in, not only until the headers.
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    held = []

    def stall():
        connection, _ = listener.accept()
        connection.recv(65536)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        held.append(connection)  # only now: the clock must run out after the headers

    threading.Thread(target=stall, daemon=True).start()
    browser_page = open_page()
    browser_page.page.clock.install()
    page = browser_page.open()
    page.route("**/predict?*", lambda route: route.continue_(url=f"http://127.0.0.1:{port}/predict"))
    page.set_input_files("#file", str(photo_210))
    page.wait_for_function("() => document.getElementById('busy').textContent !== ''")
    for _ in range(50):  # until the headers have come
        if held:
            break
        page.wait_for_timeout(100)
    page.clock.fast_forward(36_000)
    page.wait_for_selector("#error:not([hidden])")
    assert page.text_content("#error") == "The reader did not answer within 35 seconds. Try again in a moment."
    for connection in held:
        connection.close()
    listener.close()


def test_too_many_requests_says_when_to_come_back(page, photo_210):
    page.route("**/predict?*", lambda route: route.fulfill(status=429, headers={"Retry-After": "42"},
                                                          json={"error": "Too many requests from this address"}))
    page.set_input_files("#file", str(photo_210))
    page.wait_for_selector("#error:not([hidden])")
    assert page.text_content("#error") == "Too many readings from your address in a short time. Try again in 42 seconds."


def test_unreachable_server_is_said_in_plain_words(page, photo_210):
    page.route("**/predict?*", lambda route: route.abort("connectionrefused"))
    page.set_input_files("#file", str(photo_210))
    page.wait_for_selector("#error:not([hidden])")
    assert page.text_content("#error") == "Could not reach the reader. Check your connection and try again."


def test_drop_and_paste(page, client, photo_210):
    data = photo_210.read_bytes()
    expected = server_reading(client, data)["number"]
    make_transfer = """b64 => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], 'house.png', {type: 'image/png'}));
        return transfer;
    }"""
    transfer = page.evaluate_handle(make_transfer, base64.b64encode(data).decode())
    page.dispatch_event("body", "dragenter", {"dataTransfer": transfer})
    assert "dragging" in page.get_attribute("body", "class")
    page.dispatch_event("#pad", "drop", {"dataTransfer": transfer})
    assert "dragging" not in page.get_attribute("body", "class")
    assert reading(page) == expected
    assert page.text_content("#seen-caption").startswith("house.png")

    # dispatchEvent runs the handler at once, which hides the old reading until the new one comes.
    page.evaluate("""b64 => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], 'clip.png', {type: 'image/png'}));
        document.dispatchEvent(new ClipboardEvent('paste', {clipboardData: transfer}));
    }""", base64.b64encode(data).decode())
    assert reading(page) == expected
    assert page.text_content("#seen-caption").startswith("Pasted picture")


def canned(number="210", **fields) -> dict:
    digits = [[0.0] * 11 for _ in range(5)]
    for i, d in enumerate(number):
        digits[i][int(d)] = 0.9
    for row in digits[len(number):]:
        row[10] = 1.0
    body = {"number": number, "confidence": 0.9, "confident": True, "model_ms": 0.4, "model": "canned",
            "probabilities": {"length": [0.9 if k == len(number) else 0.02 for k in range(6)], "digits": digits}}
    body.update(fields)
    return body


def multipart_image(request) -> Image.Image:
    raw = b"Content-Type: " + request.headers["content-type"].encode() + b"\r\n\r\n" + request.post_data_buffer
    part = email.parser.BytesParser().parsebytes(raw).get_payload()[0]
    return Image.open(io.BytesIO(part.get_payload(decode=True)))


def test_big_photo_is_shrunk_and_boxes_land_on_the_preview(page, tmp_path):
    # A 3000x1500 photo goes up as 2048x1024; the server's boxes are in the pixels it received.
    big = tmp_path / "big.png"
    Image.new("RGB", (3000, 1500), (200, 210, 220)).save(big)
    sent = []

    def answer(route):
        image = multipart_image(route.request)
        sent.append((image.format, image.size))
        w, h = image.size
        box = [w * 0.25, h * 0.5, w * 0.5, h * 0.25]
        # The server decodes big JPEGs at a reduced scale: its `image` size need not be what was sent.
        route.fulfill(json=canned(found=True, box=box, image={"width": w // 2, "height": h // 2},
                                  candidates=[{"number": "210", "confidence": 0.9, "box": box},
                                              {"number": "7", "confidence": 0.05, "box": [0, 0, w * 0.1, h * 0.2]}]))

    page.route("**/predict?*", answer)
    page.set_input_files("#file", str(big))
    assert reading(page) == "210"
    assert sent == [("JPEG", (2048, 1024))]
    assert "3000×1500 px, sent shrunk to 2048×1024" in page.text_content("#seen-caption")
    img = page.locator("#seen-img").bounding_box()
    box = page.locator(".box.main").bounding_box()
    expected = (img["x"] + 0.25 * img["width"], img["y"] + 0.5 * img["height"],
                0.5 * img["width"], 0.25 * img["height"])
    assert box["x"] == pytest.approx(expected[0], abs=1.5)
    assert box["y"] == pytest.approx(expected[1], abs=1.5)
    assert box["width"] == pytest.approx(expected[2], abs=1.5)
    assert box["height"] == pytest.approx(expected[3], abs=1.5)
    assert page.locator(".box.other").count() == 1
    # The answer's box carries its number; another place's carries a question mark.
    assert page.text_content(".box.main .box-label") == "210"
    assert page.text_content(".box.other .box-label") == "7?"
    assert page.text_content("#others") == "Also read, in a dashed box less likely to hold the number: 7 (5%)."


def test_other_readings_are_told_apart_from_the_answer(page, photo_210):
    # Candidates are ranked by where a number likely is, so a reading elsewhere can be surer than the
    # answer; a second look at the answer's own number over its box is not drawn again.
    candidates = [{"number": "210", "confidence": 0.25, "box": [10, 10, 40, 20]},
                  {"number": "210", "confidence": 0.2, "box": [12, 11, 39, 20]},
                  {"number": "1", "confidence": 0.69, "box": [60, 2, 10, 10]},
                  {"number": "7", "confidence": 0.5, "box": [0, 30, 8, 12]}]
    page.route("**/predict?*", lambda route: route.fulfill(json=canned(
        found=True, confidence=0.25, confident=False, box=candidates[0]["box"], candidates=candidates,
        image={"width": 99, "height": 47})))
    page.set_input_files("#file", str(photo_210))
    assert reading(page) == "210"
    assert page.locator(".box.other .box-label").all_text_contents() == ["1?", "7?"]
    assert page.text_content("#others") == (
        "Also read, in dashed boxes less likely to hold the number: 1 (69%), 7 (50%).")
    # The next best of each part with its probability in brackets, not run together ("2 24%").
    assert page.locator("#probs tbody tr").first.locator(".next").text_content() == "0 digits (2%)"


def test_the_table_fits_at_320_pixels(open_page, photo_210):
    # 320 pixels: the narrowest phones, and a 1280-pixel window at 400% zoom (WCAG's reflow width).
    page = open_page({"width": 320, "height": 640}).open()
    page.route("**/predict?*", lambda route: route.fulfill(json=canned("1712", found=True, box=[0, 0, 1, 1])))
    page.set_input_files("#file", str(photo_210))
    assert reading(page) == "1712"
    assert page.eval_on_selector(".probs-scroll", "s => s.scrollWidth <= s.clientWidth")


@pytest.mark.parametrize("side", [2600, 600])
def test_phone_photo_turned_by_exif_is_read_upright(page, photo_210, tmp_path, side):
    # Phones store photos sideways with an EXIF orientation; the page (which shrinks photos above
    # 2,048 pixels itself) and the server (which reads smaller ones as they are) must both turn it.
    with Image.open(photo_210) as image:
        upright = image.resize((side, round(side * image.height / image.width)), Image.Resampling.BICUBIC)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to show"
    path = tmp_path / "sideways.jpg"
    upright.rotate(90, expand=True).save(path, quality=92, exif=exif.tobytes())
    page.set_input_files("#file", str(path))
    assert reading(page) == "210"
    caption = page.text_content("#seen-caption")
    width, height = upright.size
    if side > 2048:
        assert f"{width}×{height} px, sent shrunk to 2048×{round(2048 * height / width)}" in caption
    else:
        assert caption.endswith(f"{width}×{height} px")
    # The preview is upright too: wider than tall, as the number is.
    shown = page.locator("#seen-img").bounding_box()
    assert shown["width"] > shown["height"]


def test_too_large_file_is_refused_in_the_page(page, tmp_path):
    # Bytes the browser cannot decode (so cannot shrink) and above the server's limit: the page says
    # so itself rather than sending a megabyte more than the limit for a 413.
    path = tmp_path / "huge.jpg"
    path.write_bytes(os.urandom(UPLOAD_LIMIT + 1_000_000))
    posted = []
    page.route("**/predict?*", lambda route: (posted.append(1), route.abort()))
    page.set_input_files("#file", str(path))
    page.wait_for_selector("#error:not([hidden])")
    # Not "picture": the browser cannot tell whether it is one.
    assert page.text_content("#error") == (f"This file is {(UPLOAD_LIMIT + 1_000_000) / 1e6:.1f} MB; "
                                           f"the reader takes at most {UPLOAD_LIMIT / 1e6:.1f} MB.")
    assert posted == []


def test_a_file_just_under_the_limit_is_re_encoded_not_refused(page, photo_210, tmp_path):
    # The server's limit counts the whole multipart request: sent as it is, a file a few bytes under
    # the limit got a 413 that said it was over.
    path = tmp_path / "padded.png"
    path.write_bytes(photo_210.read_bytes().ljust(UPLOAD_LIMIT - 100, b"\0"))  # bytes after a PNG's end are ignored
    sent = []

    def answer(route):
        sent.append((multipart_image(route.request).format, len(route.request.post_data_buffer)))
        route.fulfill(json=canned())

    page.route("**/predict?*", answer)
    page.set_input_files("#file", str(path))
    assert reading(page) == "210"
    assert sent[0][0] == "JPEG" and sent[0][1] < 1_000_000


def test_heavy_photo_within_2048_pixels_is_sent_as_jpeg(app, open_page, tmp_path):
    # 2,000 x 2,000 pixels of noise is a PNG of 12 MB: under a 10 MB limit, re-encoded, it fits. (8-bit
    # colour within 2,048 pixels a side is at most 16.8 MB, so the limit is set here, not taken as it is.)
    path = tmp_path / "noise.png"
    Image.frombytes("RGB", (2000, 2000), os.urandom(2000 * 2000 * 3)).save(path)
    assert path.stat().st_size > 10_000_000
    app.config["MAX_CONTENT_LENGTH"], saved = 10_000_000, app.config["MAX_CONTENT_LENGTH"]
    try:
        page = open_page().open()  # the page is given the limit as it is served
    finally:
        app.config["MAX_CONTENT_LENGTH"] = saved
    sent = []

    def answer(route):
        image = multipart_image(route.request)
        sent.append((image.format, image.size, len(route.request.post_data_buffer)))
        route.fulfill(json=canned())

    page.route("**/predict?*", answer)
    page.set_input_files("#file", str(path))
    assert reading(page) == "210"
    assert sent[0][:2] == ("JPEG", (2000, 2000)) and sent[0][2] < 10_000_000


def test_small_photo_is_sent_as_it_is(page, photo_210):
    sent = []

    def answer(route):
        sent.append(route.request.post_data_buffer)  # Chromium leaves out the bytes of files from disk
        route.fulfill(json=canned(found=True, box=[0, 0, 1, 1]))

    page.route("**/predict?*", answer)
    page.set_input_files("#file", str(photo_210))
    reading(page)
    assert b'name="image"; filename="house-210.png"\r\nContent-Type: image/png' in sent[0]


def test_no_number_found(page, photo_210):
    page.route("**/predict?*", lambda route: route.fulfill(json=canned("", found=False, box=None, confidence=0.97)))
    page.set_input_files("#file", str(photo_210))
    assert reading(page) == "No number found"
    assert "found no house number" in page.text_content("#sureness")
    assert page.locator(".box").count() == 0
    assert page.is_hidden("#probs") and page.text_content("#confidence") == "—"


def test_no_number_found_shows_where_it_looked(page, photo_210):
    # The regions read under the "found" threshold are no answer, and not "less likely" than one.
    looked = [{"number": "7", "confidence": 0.5, "box": [0, 0, 10, 10]}, {"number": "11", "confidence": 0.2, "box": [50, 5, 20, 10]}]
    page.route("**/predict?*", lambda route: route.fulfill(json=canned(
        "", found=False, box=None, confidence=0.0, candidates=looked, image={"width": 99, "height": 47})))
    page.set_input_files("#file", str(photo_210))
    assert reading(page) == "No number found"
    assert page.locator(".box.other .box-label").all_text_contents() == ["7?", "11?"]
    assert page.text_content("#others") == (
        "Nothing looked enough like a house number to answer; in the dashed boxes it read: 7 (50%), 11 (20%).")


def test_server_error_without_json_is_explained(page, photo_210):
    page.route("**/predict?*",
               lambda route: route.fulfill(status=502, content_type="text/html", body="<h1>Bad gateway</h1>"))
    page.set_input_files("#file", str(photo_210))
    page.wait_for_selector("#error:not([hidden])")
    assert "error 502" in page.text_content("#error")


def test_phone_width(open_page, photo_210):
    browser_page = open_page(PHONE, has_touch=True, is_mobile=True, device_scale_factor=2)
    page = browser_page.open()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for selector in ("#photo-card", ".draw", ".samples", "#result", "#pad", ".buttons"):
        box = page.locator(selector).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], selector
    # Touch drawing must not scroll the page.
    assert page.eval_on_selector("#pad", "pad => getComputedStyle(pad).touchAction") == "none"
    # ... nor when begun in the band around the pad where strokes may begin too.
    assert page.eval_on_selector(".pad-frame", "f => getComputedStyle(f).touchAction") == "none"
    frame, pad = page.locator(".pad-frame").bounding_box(), page.locator("#pad").bounding_box()
    assert 10 <= pad["x"] - frame["x"] <= 14 and 10 <= pad["y"] - frame["y"] <= 14
    assert 10 <= frame["x"] + frame["width"] - pad["x"] - pad["width"] <= 14
    for button in ("#read", "label[for=file]"):
        assert page.locator(button).bounding_box()["height"] >= 44, button
    # The result sits below the inputs on a phone: reading a photo brings it into view.
    page.set_input_files("#file", str(photo_210))
    assert reading(page) == "210"
    page.wait_for_function("() => document.getElementById('result').getBoundingClientRect().top < innerHeight / 2"
                           " && document.getElementById('result').getBoundingClientRect().top >= -1")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # Nothing sticks out of its card (the probability table is the widest thing on the page).
    overflowing = page.evaluate("() => [...document.querySelectorAll('.card')]"
                                ".filter(card => card.scrollWidth > card.clientWidth).map(card => card.className)")
    assert overflowing == []
    # Drawing works at phone size too (the pad is shrunk by CSS; strokes map to its own pixels).
    draw(page, "4", fill=0.7)
    page.click("#read")
    page.wait_for_function("() => document.getElementById('seen-caption').textContent === 'Your drawing'"
                           " && !document.getElementById('reading').hidden")
    assert page.text_content("#number") == "4"
    # The result card is below, out of view: the answer is repeated under the pad.
    assert page.text_content("#pad-answer").startswith("Read 4, confidence")
    assert page.locator("#pad-answer").is_visible()
    answer = page.locator("#pad-answer").bounding_box()
    assert 0 <= answer["y"] and answer["y"] + answer["height"] <= PHONE["height"]
    # A photo read next leaves nothing of the drawing's answer under the pad.
    page.set_input_files("#file", str(photo_210))
    wait_for_number(page, "210")
    assert page.is_hidden("#pad-answer")
    assert page.is_hidden(".fine-pointer")  # no dropping or pasting on a phone
    # Read with nothing drawn: said under the pad too, since the result card is out of view.
    page.click("#clear")
    page.click("#read")
    page.wait_for_selector("#error:not([hidden])")
    assert page.text_content("#pad-answer") == "Draw a number on the pad first." == page.text_content("#error")
    assert page.locator("#pad-answer").is_visible()


@pytest.mark.parametrize("size", [(4000, 3000), (3000, 4000)])
def test_a_phone_photo_brings_its_answer_into_view(open_page, photo_210, tmp_path, size):
    # An iPhone 13's screen (390x664): a photo's picture fills most of it, and the number and
    # whether it is sure come below the picture. They must be on screen once read, not under its edge.
    phone = {"width": 390, "height": 664}
    # Scrolled at once (no smooth scrolling), so that what is seen once read is where the page stays.
    page = open_page(phone, has_touch=True, is_mobile=True, device_scale_factor=3, reduced_motion="reduce").open()
    big = tmp_path / "phone.jpg"
    with Image.open(photo_210) as photo:
        photo.resize(size).save(big, quality=90)
    page.set_input_files("#file", str(big))
    assert reading(page) == "210"
    page.wait_for_function("document.getElementById('busy').textContent === ''")
    number, sure = page.locator("#number").bounding_box(), page.locator("#sureness").bounding_box()
    assert number["y"] >= 0 and sure["y"] + sure["height"] <= phone["height"]


def test_a_tapped_button_does_not_keep_the_hover_colour(open_page):
    # A touch screen has no hover, but Chromium keeps the last tapped element :hover-ed.
    page = open_page(PHONE, has_touch=True, is_mobile=True).open()
    background = "el => getComputedStyle(el).backgroundColor"
    before = page.eval_on_selector("#read", background)
    page.tap("#read")  # nothing drawn: an error, and the button stays where the finger was
    page.wait_for_selector("#error:not([hidden])")
    assert page.eval_on_selector("#read", background) == before


@pytest.mark.parametrize("screen", [{"width": 568, "height": 320}, {"width": 839, "height": 412}],
                         ids=["short, one column", "wide enough for two columns"])
def test_a_phone_turned_sideways_shows_the_drawings_answer_under_the_pad(open_page, screen):
    # Sideways, the result card's number is above or below the screen while the visitor draws: the
    # answer under the pad must show, and fit the screen with the pad, once the pad is at its top.
    page = open_page(screen, has_touch=True, is_mobile=True).open()
    draw(page, "4", fill=0.7)
    page.click("#read")
    page.wait_for_function("() => document.getElementById('pad-answer').textContent.startsWith('Read 4')")
    page.eval_on_selector("#pad", "pad => pad.scrollIntoView({block: 'start'})")
    answer = page.locator("#pad-answer")
    assert answer.is_visible()
    box = answer.bounding_box()
    assert box["y"] + box["height"] <= screen["height"]


def test_larger_text_does_not_push_the_page_sideways(open_page, photo_210):
    # The browser's text size made larger (not zoom, which narrows the layout too): the probability
    # table is wider than a phone then, and scrolls in its own box.
    page = open_page(PHONE).open()
    page.evaluate("document.documentElement.style.fontSize = '24px'")  # CSSOM: the policy allows it
    page.set_input_files("#file", str(photo_210))
    assert reading(page) == "210"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_high_contrast_keeps_the_box_and_bars(open_page, photo_210):
    browser_page = open_page(forced_colors="active")
    page = browser_page.open()
    page.set_input_files("#file", str(photo_210))
    assert reading(page) == "210"
    assert page.eval_on_selector(".box", "b => getComputedStyle(b).boxShadow") != "none"
    assert page.eval_on_selector(".bar", "b => getComputedStyle(b).backgroundImage") != "none"


def test_keyboard_alone(page):
    # Tab order follows the page: the photo picker, the samples, then the drawing's Read button.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "file"
    label_outline = page.eval_on_selector("label[for=file]", "l => getComputedStyle(l).outlineStyle")
    assert label_outline == "solid"  # the hidden input's focus shows on its visible label
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "sample"
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    truth = page.evaluate("document.activeElement.dataset.number")
    page.keyboard.press("Enter")
    reading(page)
    assert page.text_content("#verdict").endswith(f"the photo shows {truth}.")
    count = page.locator(".sample").count()
    for _ in range(count - 1):
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "sample"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "read"
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    page.keyboard.press("Enter")  # nothing drawn yet: the page says so
    page.wait_for_selector("#error:not([hidden])")
    assert "Draw a number" in page.text_content("#error")
    # Alone: under it, the sample's answer would seem to be what went wrong.
    assert page.is_hidden("#reading") and page.is_hidden("#seen")


def test_page_has_no_inline_code(page, live_server):
    # Every test here runs under the app's policy; a violation fails it as a console error.
    response = page.goto(live_server + "/")
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "unsafe-inline" not in policy
    html = response.text()
    assert " style=" not in html and "<style" not in html
    assert page.locator("script:not([src])").count() == 0
