"""Makes tests/fixtures/heic/11-orientation6.heic, the HEIC test fixture, the way an iPhone stores a photo.

    .venv/bin/python -m scripts.make_heic_fixture

SVHN test photo 11 (the number 34) is stored sideways, as a phone held upright stores its sensor's
picture, with EXIF orientation 6 ("rotate 90 degrees clockwise to view"); pillow-heif writes that as
the HEIF rotation the iPhone uses. A reader that ignores the orientation sees the digits on their side.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pillow_heif
from PIL import Image

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
SOURCE = FIXTURES / "svhn_test" / "11.png"
TARGET = FIXTURES / "heic" / "11-orientation6.heic"


def main() -> None:
    pillow_heif.register_heif_opener()
    upright = Image.open(SOURCE).convert("RGB")
    sideways = upright.transpose(Image.Transpose.ROTATE_90)  # counter-clockwise: orientation 6 undoes it
    exif = Image.Exif()
    exif[0x0112] = 6
    TARGET.parent.mkdir(exist_ok=True)
    sideways.save(TARGET, "HEIF", quality=90, exif=exif.tobytes())
    print(f"{TARGET.relative_to(FIXTURES.parent.parent)}: {TARGET.stat().st_size} bytes, stored {sideways.size}, "
          f"pillow-heif {pillow_heif.__version__}, libheif {pillow_heif.libheif_version()}")


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()  # --help, not a run
    main()
