"""SVHN format 1 on disk: labels in our JSON format or the official digitStruct.mat, and a downloader.

Two layouts are read, each a folder of PNGs plus labels:
  * ours:     DIR/labels.json  {"1.png": [{"label": 1, "left": .., "top": .., "width": .., "height": ..}, ...]}
  * official: DIR/digitStruct.mat (MATLAB v7.3 = HDF5), where the digit 0 is written as 10.
A data root may hold `train/` and `test/` in either layout.

    python -m model.data download DIR      # fetch and unpack the official train/test archives
"""
from __future__ import annotations

import argparse
import gzip
import json
import shutil
import tarfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from model.cli import InputError, said_plainly

OFFICIAL_URL = "http://ufldl.stanford.edu/housenumbers/"
MAX_DIGITS = 5  # the network reads at most this many digits (one SVHN train image has 6)


@dataclass(frozen=True)
class Sample:
    path: Path
    digits: tuple[int, ...]
    boxes: tuple[tuple[float, float, float, float], ...]  # left, top, width, height per digit

    @property
    def number(self) -> str:
        return "".join(str(d) for d in self.digits)


def no_folder(path: Path) -> str:
    """Why PATH is not a folder, in words: an archive given for the folder it unpacks into is the common case."""
    if path.name.endswith((".tar.gz", ".tgz", ".tar", ".zip")) and path.is_file():
        unpack = f"unzip {path.name}" if path.name.endswith(".zip") else f"tar -xf {path.name}"  # tar finds the compression
        return (f"{path} is an archive, not a folder: unpack it ({unpack}), or let "
                f"python -m model.data download DIR fetch and unpack SVHN")
    return f"{path} is a file, not a folder" if path.exists() else f"{path}: no such folder"


def load_samples(folder: str | Path) -> list[Sample]:
    """Every labelled image of one split, sorted by the image's number (1.png, 2.png, ...).

    A folder a user points at may be the wrong one or hold a hand-made label file: each such
    mistake is an InputError that names the folder, file or entry.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(no_folder(folder))
    source = folder / "labels.json"
    if source.exists():
        try:
            labels = json.loads(source.read_text())
        except json.JSONDecodeError as error:
            raise InputError(f"{source}: not valid JSON ({error})") from None
    elif (folder / "digitStruct.mat").exists():
        source = folder / "digitStruct.mat"
        labels = read_digit_struct(source)
    else:
        raise InputError(f"{folder} has neither labels.json nor digitStruct.mat (a labelled SVHN folder, or a root holding train/)")
    if not isinstance(labels, dict):
        raise InputError(f"{folder}: labels map each image's file name to its digits, as docs/training.md shows")
    samples = []
    for name, digits in labels.items():
        try:
            samples.append(Sample(
                path=folder / name,
                digits=tuple(int(d["label"]) for d in digits),
                boxes=tuple((float(d["left"]), float(d["top"]), float(d["width"]), float(d["height"])) for d in digits),
            ))
        except (KeyError, TypeError, ValueError, OverflowError) as error:
            raise InputError(f"{folder}: the labels of {name!r} need label, left, top, width and height as numbers "
                             f"for each digit ({type(error).__name__}: {error})") from None
        check_digits(source, name, [d["label"] for d in digits])
    if not samples:
        raise InputError(f"{folder}: its labels name no image")
    return sorted(samples, key=lambda s: (len(s.path.stem), s.path.stem))


def check_digits(source: Path, name: str, labels: list) -> None:
    """Each label a whole number 0-9, and at least one: int() would read 1.7 as 1, and a 10 or an
    empty list failed deep inside training or evaluation, never naming the image."""
    if not labels:
        raise InputError(f"{source}: {name!r} has an empty list of digits (each image is labelled with its number)")
    for value in labels:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or not 0 <= value <= 9:
            raise InputError(f"{source}: {name!r} has the label {value!r}, not a digit 0-9 (0 is written 0 in "
                             f"labels.json; the official digitStruct.mat's 10 is turned into 0 when it is read)")


def labelled_folder(data: str | Path) -> Path:
    """The labelled folder a --data names: a root holding train/, or the folder itself."""
    root = Path(data)
    return root / "train" if (root / "train").is_dir() else root


# What Pillow raises for a truncated or garbled file, by the time its pixels are read.
UNREADABLE = (OSError, SyntaxError, ValueError)


def open_image(path: Path, mode: str) -> Image.Image:
    """A labelled photo, read whole now: Pillow reads lazily, so a damaged file would otherwise fail
    later, deep inside training, without its name."""
    try:
        with Image.open(path) as image:
            return image.convert(mode)
    except FileNotFoundError:
        raise InputError(f"{path}: no such image, though its labels name it") from None
    except UNREADABLE as error:
        raise InputError(f"{path}: not a picture that can be read ({error}); replace it, or drop it from the labels") from None


def held_out_by(record: dict) -> tuple[str, float, int]:
    """(data folder, fraction, seed) of the split a training run made, from its train.json; runs
    from before val_seed held out photos by their one seed."""
    return record["data"], record["val_fraction"], record.get("val_seed", record["seed"])


def split(samples: list[Sample], fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """(train, validation): a seeded shuffle, so evaluation can rebuild a training run's validation set."""
    order = np.random.default_rng(seed).permutation(len(samples))
    n_val = int(round(len(samples) * fraction))
    return [samples[i] for i in order[n_val:]], [samples[i] for i in order[:n_val]]


def read_digit_struct(path: str | Path) -> dict[str, list[dict]]:
    """digitStruct.mat -> our label format. h5py is a training dependency, so import it here."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as error:  # an older MATLAB format (savemat, save -v7), or a file cut short
        with open(path, "rb") as head:
            kind = head.read(19).decode("ascii", "replace")  # "MATLAB 5.0 MAT-file" for v7 and older
        if kind.startswith("MATLAB") and not kind.startswith("MATLAB 7.3"):
            raise InputError(f"{path} is not a MATLAB v7.3 (HDF5) file but a {kind}: resave it with save -v7.3, "
                             f"or give labels.json") from None
        raise InputError(f"{path} is not a MATLAB v7.3 (HDF5) file, or it is cut short (h5py: {error}): download it "
                         f"again, resave it with save -v7.3, or give labels.json") from None
    try:
        with f:
            return digit_struct_labels(f)
    except (KeyError, OSError, RuntimeError, ValueError) as error:  # HDF5, but damaged or not SVHN's layout
        raise InputError(f"{path}: not SVHN's digitStruct, or damaged ({type(error).__name__}: {error}); "
                         f"download it again, or give labels.json") from None


def digit_struct_labels(f) -> dict[str, list[dict]]:
    """The labels of an open digitStruct.mat (an h5py.File)."""
    labels: dict[str, list[dict]] = {}
    struct = f["digitStruct"]
    names, bboxes = struct["name"], struct["bbox"]
    for i in range(names.shape[0]):
        name = "".join(chr(int(c)) for c in f[names[i, 0]][()].ravel())
        group = f[bboxes[i, 0]]

        def values(key: str) -> list[float]:
            data = group[key]
            if data.shape[0] == 1:  # one digit: the value itself, not a reference
                return [float(data[()].ravel()[0])]
            return [float(f[data[j, 0]][()].ravel()[0]) for j in range(data.shape[0])]

        columns = {key: values(key) for key in ("label", "left", "top", "width", "height")}
        wrong = [value for value in columns["label"] if value != int(value) or not 1 <= value <= 10]
        if wrong:  # % 10 below would read an 11 as a 1
            raise InputError(f"{f.filename}: {name!r} has the label {wrong[0]:g}, where SVHN writes 1 to 10 (10 for 0)")
        labels[name] = [
            {
                "label": int(columns["label"][j]) % 10,  # the official files write 0 as 10
                "left": columns["left"][j],
                "top": columns["top"][j],
                "width": columns["width"][j],
                "height": columns["height"][j],
            }
            for j in range(len(columns["label"]))
        ]
    return labels


def download(dest: str | Path, sets: list[str], base_url: str = OFFICIAL_URL) -> None:
    """Fetch `{set}.tar.gz` for each set into DEST, resuming partial files, then unpack them."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in sets:
        archive = dest / f"{name}.tar.gz"
        if not archive.exists():
            partial = archive.with_suffix(".gz.part")
            fetch(base_url + archive.name, partial)
            partial.rename(archive)
        if not (dest / name / "digitStruct.mat").exists():
            unpack(archive, dest / name)
        print(f"{name}: {dest / name}")


def unpack(archive: Path, target: Path) -> None:
    """Unpack ARCHIVE (which holds TARGET's name as its folder) into a folder beside TARGET, renamed
    into place once every file is out: an unpack cut off halfway leaves nothing that looks finished."""
    if target.exists():
        raise InputError(f"{target} is there without digitStruct.mat (an unpack cut off by an earlier version?): "
                         f"delete it and run download again")
    scratch = target.with_name(f".{target.name}.unpacking")
    shutil.rmtree(scratch, ignore_errors=True)  # what an interrupted run left
    try:
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(scratch, filter="data")
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
            raise InputError(f"{archive}: damaged or cut short ({error}); delete it and run download again") from None
        if not (scratch / target.name).is_dir():
            raise InputError(f"{archive} holds no {target.name}/ folder: not an SVHN archive")
        (scratch / target.name).rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def fetch(url: str, partial: Path) -> None:
    """Download URL into PARTIAL, continuing where an earlier, interrupted run stopped."""
    from tqdm import tqdm

    have = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # nothing left to fetch: the earlier run got every byte
            return
        raise
    with response:
        if response.status != 206:  # the server ignored the range: start over
            have = 0
        length = response.headers.get("Content-Length")
        with open(partial, "ab" if have else "wb") as out, tqdm(
            total=have + int(length) if length else None, initial=have, unit="B", unit_scale=True, desc=partial.stem
        ) as bar:
            while chunk := response.read(1 << 20):
                out.write(chunk)
                bar.update(len(chunk))
    if length is not None and partial.stat().st_size != have + int(length):  # the body ended early
        raise OSError(f"{url}: got {partial.stat().st_size} of {have + int(length)} bytes; run again to resume")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    get = sub.add_parser("download", help="download and unpack the official SVHN archives",
                         description="Fetch SET.tar.gz for each set into DEST and unpack it into DEST/SET. An archive "
                                     "already in DEST is used without fetching it; a partial download "
                                     "(SET.tar.gz.part) is resumed; a set already unpacked is left as it is.")
    get.add_argument("dest", help="folder for the archives and their unpacked sets, e.g. data/svhn")
    get.add_argument("--sets", nargs="+", default=["train", "test"], choices=["train", "test", "extra"],
                     help="which archives (default: train test)")
    get.add_argument("--base-url", default=OFFICIAL_URL, help=f"where SET.tar.gz is fetched from (default {OFFICIAL_URL})")
    stats = sub.add_parser("stats", help="count images and number lengths of a labelled folder")
    stats.add_argument("folder")
    args = parser.parse_args()
    if args.command == "download":
        download(args.dest, args.sets, args.base_url)
    else:
        samples = load_samples(args.folder)
        lengths: dict[int, int] = {}
        for s in samples:
            lengths[len(s.digits)] = lengths.get(len(s.digits), 0) + 1
        print(f"{len(samples)} images, numbers by length: {dict(sorted(lengths.items()))}")


if __name__ == "__main__":
    with said_plainly():  # a wrong folder or run is one line, not a traceback
        main()
