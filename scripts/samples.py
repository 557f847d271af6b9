"""Build the page's sample gallery (static/samples/) from the SVHN test photos in tests/fixtures.

    .venv/bin/python scripts/samples.py

The photos are chosen to cover numbers of 1 to 4 digits and small and large photos, not for
being read right: the page shows visitors whether the model got each one right.
Each photo is copied unchanged (the model reads it as a visitor's upload) with a small JPEG
thumbnail for the gallery, and samples.json gives the true numbers.
"""
import argparse
import json
import shutil
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from model.data import load_samples  # noqa: E402

PICKS = [2, 9, 11, 15, 16, 19, 20, 27, 44, 45, 47, 49]  # SVHN test photo numbers (files N.png)
THUMB_HEIGHT = 96  # twice the gallery's displayed height, for high-density screens


def main(out: Path = ROOT / "static/samples") -> None:
    samples = {s.path.name: s for s in load_samples(ROOT / "tests/fixtures/svhn_test")}
    out.mkdir(parents=True, exist_ok=True)
    manifest = []
    for pick in PICKS:
        sample = samples[f"{pick}.png"]
        shutil.copyfile(sample.path, out / sample.path.name)
        with Image.open(sample.path) as image:
            image = image.convert("RGB")
            width, height = image.size
            thumb = image.resize((max(1, round(width * THUMB_HEIGHT / height)), THUMB_HEIGHT), Image.Resampling.LANCZOS)
            thumb.save(out / f"thumb-{pick}.jpg", quality=85)
        manifest.append({"file": sample.path.name, "thumb": f"thumb-{pick}.jpg", "number": sample.number,
                         "width": width, "height": height, "source": f"SVHN test photo {pick}"})
    (out / "samples.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"{len(manifest)} samples in {out}")


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()  # --help, not a run
    main()
