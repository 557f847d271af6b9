"""Take the README's screenshots: the page in Debian's Chromium after reading a real SVHN photo
(test photo 2, whole, with the box the localiser found), at desktop width and at the
width of a small phone (360 CSS pixels); and after reading a number drawn on the pad with the
mouse along the Hershey font's strokes (scripts/pen.py).

    apt-get install chromium    # Playwright drives it; requirements-dev.txt has playwright
    .venv/bin/python scripts/screenshot.py docs
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from model.data import load_samples  # noqa: E402
from scripts.pen import draw  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
SHOTS = {  # file name: (viewport, whole page or only what the phone's screen shows)
    "screenshot.png": ({"width": 1100, "height": 800}, True),
    "screenshot-phone.png": ({"width": 360, "height": 740}, False),
}


DRAWING = ("screenshot-drawing.png", "2048")  # file name, number drawn (at desktop width)


def main(out_dir: str, port: int = 8765) -> None:
    env = dict(os.environ, PORT=str(port), WEB_CONCURRENCY="1")
    server = subprocess.Popen([str(ROOT / ".venv/bin/gunicorn"), "--config", "gunicorn.conf.py", "app:create_app()"],
                              cwd=ROOT, env=env)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        sample = load_samples(ROOT / "tests/fixtures/svhn_test")[1]
        photo = Path(tempfile.mkdtemp()) / "house-210.jpg"
        Image.open(sample.path).convert("RGB").save(photo, quality=95)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
            for name, (viewport, full_page) in SHOTS.items():
                page = browser.new_page(viewport=viewport, has_touch=not full_page)
                problems = []  # a CSP violation or script error shows up in the console
                page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: problems.append(str(e)))
                page.goto(f"http://127.0.0.1:{port}/")
                page.set_input_files("#file", str(photo))
                page.wait_for_selector("#reading:not([hidden])")
                # The phone page scrolls smoothly to the result; wait until it is there.
                # (or as far as the page goes, when the result is near its end).
                page.wait_for_function("() => Math.abs(document.getElementById('result').getBoundingClientRect().top"
                                       " - (innerWidth < 800 ? 8 : 0)) < 2 || innerWidth >= 800"
                                       " || innerHeight + scrollY >= document.documentElement.scrollHeight - 1")
                page.wait_for_timeout(300)  # the smooth scroll's last frames
                path = Path(out_dir) / name
                page.screenshot(path=str(path), full_page=full_page)
                print(f"{path}: read {page.text_content('#number')!r}; console errors: {problems or 'none'}")
                page.close()
            name, number = DRAWING
            page = browser.new_page(viewport=SHOTS["screenshot.png"][0])
            page.goto(f"http://127.0.0.1:{port}/")
            draw(page, number, fill=0.7)
            # The page reads the drawing 0.8 s after the last stroke; the reading of an unfinished one may come first.
            page.wait_for_timeout(2000)
            page.wait_for_selector("#reading:not([hidden])")
            path = Path(out_dir) / name
            page.screenshot(path=str(path), full_page=True)
            print(f"{path}: drew {number!r}, read {page.text_content('#number')!r}")
            page.close()
            browser.close()
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", nargs="?", default="docs", help="where the PNGs go (default docs)")
    main(parser.parse_args().out_dir)
