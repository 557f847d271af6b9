"""Pseudo-labels for unlabelled photos: what a trained model reads with high confidence.

    python -m model.pseudo --model model/svhn.tflite --data data/svhn_unlabeled --out runs/pseudo.json

Keeps a photo only when the model's confidence in its whole reading is at least --threshold;
a later training run (--pseudo runs/pseudo.json) learns from those photos as if labelled, and
its better model can label again (refreshing the set). The photos are tight crops around a
number, so they are read whole, as the crop protocol reads a test photo.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from PIL import Image

from model.cli import InputError, said_plainly
from model.data import UNREADABLE
from model.preprocess import CROP_MARGIN


def photos_in(folder: str) -> list[Path]:
    """Every picture Pillow can open in the folder, whatever the case of its extension (IMG_1.JPEG)."""
    if not Path(folder).is_dir():
        raise InputError(f"{folder}: no such folder of unlabelled photos")
    readable = {ext for ext, kind in Image.registered_extensions().items() if kind in Image.OPEN}
    photos = sorted(path for path in Path(folder).iterdir() if path.suffix.lower() in readable)
    if not photos:
        # Training would otherwise go on without the source, and say nothing.
        raise InputError(f"{folder}: no pictures in it ({', '.join(sorted(readable)[:6])}, ...)")
    return photos


def label_folder(model: str, folder: str, threshold: float) -> dict:
    from model.runtime import Reader

    photos = photos_in(folder)
    reader = Reader(model)
    labels, seen = {}, 0
    for path in photos:
        try:
            with Image.open(path) as image:
                picture = image.convert("RGB")
        except UNREADABLE as error:
            # One damaged photo among thousands without labels costs that photo, not the recipe's hours.
            print(f"{path}: skipped, not a picture that can be read ({error})", file=sys.stderr)
            continue
        reading = reader.read(picture)
        seen += 1
        if reading.number and reading.confidence >= threshold:
            labels[path.name] = {"number": reading.number, "confidence": round(reading.confidence, 4)}
    return {"folder": str(Path(folder).resolve()), "model": reader.name, "threshold": threshold,
            "photos": seen, "kept": len(labels), "labels": labels}


def load_pseudo_labels(path: str) -> list[tuple[Image.Image, tuple[int, ...]]]:
    record = json.loads(Path(path).read_text())
    folder = Path(record["folder"])
    return [(Image.open(folder / name).convert("L"), tuple(int(c) for c in entry["number"]))
            for name, entry in record["labels"].items()]


def pseudo_photos(photos: list[tuple[Image.Image, tuple[int, ...]]]):
    """A training source: a pseudo-labelled photo, its digits assumed to fill it as a protocol crop would."""
    def draw(rng):
        image, digits = photos[int(rng.integers(len(photos)))]
        width, height = image.width / (1 + 2 * CROP_MARGIN), image.height / (1 + 2 * CROP_MARGIN)
        return image, digits, ((image.width - width) / 2, (image.height - height) / 2, width, height)
    return draw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a .tflite exported by model.export")
    parser.add_argument("--data", required=True, help="folder of unlabelled photos")
    parser.add_argument("--out", required=True)
    parser.add_argument("--threshold", type=float,
                        help="default: the model card's confidence_threshold (98%% right on validation)")
    args = parser.parse_args()
    with said_plainly():
        threshold = args.threshold
        if threshold is None:
            threshold = json.loads(Path(args.model).with_suffix(".json").read_text())["confidence_threshold"]
        record = label_folder(args.model, args.data, threshold)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=1))
    print(f"kept {record['kept']} of {record['photos']} photos at confidence >= {threshold:.3f}")


if __name__ == "__main__":
    main()
