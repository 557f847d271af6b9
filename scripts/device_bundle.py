"""Pack what a training run needs into one folder small enough to travel to a lent GPU machine.

    python scripts/device_bundle.py --svhn ../shared/data/svhn/train --mnist ../shared/data/mnist \
        --pseudo runs/pseudo-bundled.json --out .device

The device tool copies the working tree and up to 64 MiB of carried paths; the data folders
as they are (labelled photos 26 MB, unlabelled 44 MB, MNIST 11 MB, fonts 104 MB) do not fit
together. Training reads every photo in grey (model/fitting.py, model/pseudo.py), so the bundle
stores them as grey PNGs, the same pixels training would see in a third of the bytes; only the
unlabelled photos that the pseudo-label file keeps, and only MNIST's train files (its val split
is their tail). Fonts stay behind: matplotlib's own fonts are on that machine. With --wheels,
Keras and the two packages it needs that the machine lacks are downloaded for its Python (3.12).

On the GPU machine, from the repository's root (docs/training.md, "On JAX and on a GPU machine"):

    pip install --no-index --no-deps --target /tmp/site .device/whl/*.whl && export PYTHONPATH=/tmp/site
    KERAS_BACKEND=jax python3 -m model.train --data .device/svhn --mnist .device/mnist \
        --pseudo .device/pseudo.json --workers 16 ...
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: the project's own loader reads either label layout
from model.data import load_samples  # noqa: E402

# The Keras that trains here, and the two of its needs that the GPU machine's image lacks (absl-py,
# h5py, ml-dtypes, numpy, packaging and rich are there).
KERAS = next(line.strip() for line in (ROOT / "requirements-dev.txt").read_text().splitlines() if line.startswith("keras=="))
WHEELS = (KERAS, "namex", "optree")
MNIST_TRAIN = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")


def grey_copy(source: Path, target: Path) -> None:
    with Image.open(source) as image:
        image.convert("L").save(target, optimize=True)


def bundle(svhn: Path, mnist: Path, pseudo: Path | None, out: Path) -> dict[str, int]:
    """-> bytes written per part."""
    samples = load_samples(svhn)  # labels.json or the official digitStruct.mat
    (out / "svhn").mkdir(parents=True, exist_ok=True)
    for sample in samples:
        grey_copy(sample.path, out / "svhn" / sample.path.name)
    # In our format whatever the source's; load_samples orders photos by name either way, so
    # model.train holds out the same ones there as here.
    labels = {s.path.name: [{"label": digit, "left": left, "top": top, "width": width, "height": height}
                            for digit, (left, top, width, height) in zip(s.digits, s.boxes)] for s in samples}
    (out / "svhn" / "labels.json").write_text(json.dumps(labels))

    (out / "mnist").mkdir(exist_ok=True)
    for name in MNIST_TRAIN:
        shutil.copy(mnist / name, out / "mnist" / name)

    if pseudo:
        record = json.loads(pseudo.read_text())
        folder = Path(record["folder"])
        (out / "unlabelled").mkdir(exist_ok=True)
        for name in record["labels"]:
            grey_copy(folder / name, out / "unlabelled" / name)
        # model.pseudo reads the photos from this folder, relative to where training runs: the repository's root.
        record["folder"] = str(out / "unlabelled")
        (out / "pseudo.json").write_text(json.dumps(record, indent=1))
    return {part.name: sum(f.stat().st_size for f in part.rglob("*") if f.is_file())
            for part in sorted(out.iterdir()) if part.is_dir()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--svhn", type=Path, required=True, help="labelled photos (labels.json or digitStruct.mat)")
    parser.add_argument("--mnist", type=Path, required=True, help="MNIST folder (idx files)")
    parser.add_argument("--pseudo", type=Path, help="model.pseudo's file: its kept photos travel too")
    parser.add_argument("--out", type=Path, default=Path(".device"))
    parser.add_argument("--wheels", action="store_true", help=f"also download {', '.join(WHEELS)} for CPython 3.12")
    args = parser.parse_args()
    sizes = bundle(args.svhn, args.mnist, args.pseudo, args.out)
    if args.wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                        "--python-version", "3.12", "--implementation", "cp", "--platform", "manylinux_2_17_x86_64",
                        "--platform", "manylinux2014_x86_64", "-d", str(args.out / "whl"), *WHEELS], check=True)
        sizes["whl"] = sum(f.stat().st_size for f in (args.out / "whl").iterdir())
    for part, size in sizes.items():
        print(f"{args.out / part}: {size / 2**20:.1f} MiB")
    print(f"in all {sum(sizes.values()) / 2**20:.1f} MiB (the device tool carries 64 MiB with the working tree)")


if __name__ == "__main__":
    main()
