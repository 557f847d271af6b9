"""Write the strokes of the digits 0-9 of a single-line Hershey font to tests/fixtures/, for the
browser tests that draw numbers on the page's canvas with real pointer moves.

    .venv/bin/pip install --target /tmp/hershey hershey-fonts==2.1.0
    PYTHONPATH=/tmp/hershey .venv/bin/python scripts/hershey_digits.py

The strokes are kept as data rather than the package being a test dependency because the
hershey-fonts wheel also installs a top-level `tests` package, which shadows this project's
tests/ and breaks `from tests.conftest import ...` in every test module.
"""
import argparse
import json
import sys
from pathlib import Path

FONT = "futural"  # Futura-like, one line per stroke: the way a hand draws digits
OUT = Path(__file__).resolve().parent.parent / "tests/fixtures/hershey_digits.json"
ACKNOWLEDGEMENTS = [
    "The Hershey Fonts were originally created by Dr. A. V. Hershey while working at the U. S. National Bureau"
    " of Standards.",
    "The format of the Font data in this distribution was originally created by James Hurt, Cognition, Inc.",
    "Extracted with the hershey-fonts Python package 2.1.0 (MIT licence, Copyright (c) 2020 apshu).",
]


def main(out: Path = OUT) -> None:
    from HersheyFonts import HersheyFonts  # here, not at the top: --help works without the package (see above)

    font = HersheyFonts()
    font.load_default_font(FONT)
    glyphs = {}
    for digit in "0123456789":
        strokes = [[list(point) for point in stroke] for stroke in font.strokes_for_text(digit)]
        pair = list(font.strokes_for_text(digit + digit))
        advance = pair[len(strokes)][0][0] - strokes[0][0][0]  # where the same glyph starts again
        glyphs[digit] = {"advance": advance, "strokes": strokes}
    data = {"font": FONT, "y": "down (screen coordinates)", "acknowledgements": ACKNOWLEDGEMENTS, "glyphs": glyphs}
    out.write_text(json.dumps(data, separators=(",", ":")) + "\n")
    print(f"{out}: {len(glyphs)} glyphs", file=sys.stderr)


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()  # --help, not a run
    main()
