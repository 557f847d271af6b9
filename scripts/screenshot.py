"""Take the README's screenshot: the page in Debian's Chromium after reading a real SVHN photo
(test photo 2, cropped around its number as in the crop protocol: no localiser yet).

    .venv/bin/pip install playwright && apt-get install chromium
    .venv/bin/python scripts/screenshot.py docs/screenshot.png
"""
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
from model.preprocess import protocol_crop  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def main(out: str, port: int = 8765) -> None:
    env = dict(os.environ, PORT=str(port), WEB_CONCURRENCY="1")
    server = subprocess.Popen([str(ROOT / ".venv/bin/gunicorn"), "--config", "gunicorn.conf.py", "app:create_app()"], cwd=ROOT, env=env)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
            page = browser.new_page(viewport={"width": 1100, "height": 760})
            problems = []  # a CSP violation or script error shows up in the console
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(f"http://127.0.0.1:{port}/")
            sample = load_samples(ROOT / "tests/fixtures/svhn_test")[1]
            photo = Path(tempfile.mkdtemp()) / "house-210.jpg"
            protocol_crop(Image.open(sample.path).convert("RGB"), list(sample.boxes)).save(photo, quality=95)
            page.set_input_files("#file", str(photo))
            page.wait_for_function("document.getElementById('number').textContent.trim() !== '—'")
            page.screenshot(path=out, full_page=True)
            print(f"{out}: read {page.text_content('#number')!r}; console errors: {problems or 'none'}")
            browser.close()
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshot.png")
