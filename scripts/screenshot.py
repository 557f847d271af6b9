"""Take the README's screenshot: the page in Debian's Chromium after reading a real SVHN photo.

    .venv/bin/pip install playwright && apt-get install chromium
    .venv/bin/python scripts/screenshot.py docs/screenshot.png
"""
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "tests/fixtures/svhn_test/2.png"
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
            page.goto(f"http://127.0.0.1:{port}/")
            page.set_input_files("#file", str(PHOTO))
            page.wait_for_function("document.getElementById('number').textContent.trim() !== '—'")
            page.screenshot(path=out, full_page=True)
            print(f"{out}: read {page.text_content('#number')!r}")
            browser.close()
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshot.png")
