"""This product against what a user would reach for instead: RapidOCR and Tesseract, on the same SVHN photos.

    .venv/bin/pip install -r bench/requirements.txt      # and Debian's tesseract-ocr (apt-get install tesseract-ocr)
    .venv/bin/python -m bench.compare --data /path/to/svhn/test --train /path/to/svhn/train

One process, the same images, the two protocols of model.evaluate (crop: the digits' union box
grown by 30%; whole: the photo as it is), and for each method the exact-number accuracy and the
p50/p95 latency of one image. The methods take turns image by image, so a change in the machine's
load falls on all of them alike.

* ours: POST /predict through the app's own test client (Flask in-process): whatever the API does,
  localiser included, from the PNG bytes to the JSON. Its time includes decoding the PNG; the
  others get the decoded picture.
* RapidOCR (rapidocr-onnxruntime, its bundled PP-OCR models, default settings: detection, angle
  classification, recognition). A photo may give several text lines: the digits of every line that
  has some, joined left to right (a house number is one row, and the detector sometimes splits it).
* RapidOCR recognition only (use_det=False): the picture taken as one text line. This is what a
  user who already has the crop would call, and RapidOCR's best chance here.
* Tesseract 5 (Debian's tesseract-ocr through pytesseract, which runs the CLI once per image),
  digits only (tessedit_char_whitelist), in the page-segmentation mode that reads most numbers
  exactly on the first --select *training* photos under the same protocol (never test photos).
"""
from __future__ import annotations

import argparse
import io
import platform
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from app import create_app
from app.images import decode_image
from bench.speed import percentile
from model.data import Sample, load_samples
from model.evaluate import score
from model.preprocess import protocol_crop

TESSERACT_MODES = (7, 8, 6, 13)  # one line, one word, one block, raw line
Reader = Callable[[Image.Image, bytes], str]


PROTOCOLS = ("crop", "whole")  # the two of model.evaluate that every method can take as they are


def protocol_input(sample: Sample, protocol: str) -> tuple[Image.Image, bytes]:
    """The picture a method gets under a protocol, decoded by the product's decoder, and its PNG bytes."""
    data = sample.path.read_bytes()
    image = decode_image(data, max_pixels=10**9)
    if protocol == "crop":
        image = protocol_crop(image, list(sample.boxes))
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        data = buffer.getvalue()
    return image, data


def digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def ours() -> Reader:
    client = create_app().test_client()

    def read(image: Image.Image, data: bytes) -> str:
        response = client.post("/predict", data=data, content_type="image/png")
        return response.get_json()["number"]
    return read


def rapidocr(detect: bool) -> Reader:
    from rapidocr_onnxruntime import RapidOCR

    engine = RapidOCR()

    def read(image: Image.Image, data: bytes) -> str:
        bgr = np.ascontiguousarray(np.asarray(image)[:, :, ::-1])  # OpenCV's channel order, as RapidOCR expects
        if not detect:
            lines, _ = engine(bgr, use_det=False, use_cls=False)
            return digits("".join(text for text, _score in lines or []))
        lines, _ = engine(bgr)
        found = sorted((min(x for x, _ in box), digits(text)) for box, text, _score in lines or [] if digits(text))
        return "".join(text for _, text in found)
    return read


def tesseract(psm: int) -> Reader:
    import pytesseract

    config = f"--psm {psm} -c tessedit_char_whitelist=0123456789"

    def read(image: Image.Image, data: bytes) -> str:
        return digits(pytesseract.image_to_string(image, config=config))
    return read


def best_tesseract_mode(train: list[Sample], protocol: str) -> int:
    inputs = [protocol_input(s, protocol) for s in train]
    right = {}
    for psm in TESSERACT_MODES:
        read = tesseract(psm)
        right[psm] = sum(read(*x) == s.number for x, s in zip(inputs, train))
    print(f"tesseract --psm on {len(train)} training photos ({protocol}): "
          + ", ".join(f"{psm}: {n / len(train):.1%}" for psm, n in right.items()), flush=True)
    return max(TESSERACT_MODES, key=lambda psm: right[psm])  # ties go to the earlier (simpler) mode


def run(methods: dict[str, Reader], samples: list[Sample], protocol: str) -> dict[str, dict]:
    readings = {name: [] for name in methods}
    times = {name: [] for name in methods}
    inputs = [protocol_input(s, protocol) for s in samples]
    for name, read in methods.items():
        read(*inputs[0])  # warm up: first-call costs (sessions, caches) are not a reading's time
    for i, x in enumerate(inputs):
        for name, read in methods.items():
            started = time.perf_counter()
            readings[name].append(read(*x))
            times[name].append((time.perf_counter() - started) * 1000)
        if (i + 1) % 100 == 0:
            print(f"  {protocol}: {i + 1}/{len(inputs)}", flush=True)
    truths = [s.number for s in samples]
    return {name: {"accuracy": score(readings[name], truths)["number_accuracy"],
                   "p50": percentile(times[name], 50), "p95": percentile(times[name], 95)} for name in methods}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="labelled SVHN test folder (labels.json or digitStruct.mat)")
    parser.add_argument("--train", help="labelled SVHN training folder, to choose Tesseract's mode (default: --data/../train)")
    parser.add_argument("--limit", type=int, default=500, help="the first N test photos (default 500)")
    parser.add_argument("--select", type=int, default=200, help="training photos used to choose Tesseract's mode")
    parser.add_argument("--protocol", choices=PROTOCOLS, nargs="+", default=list(PROTOCOLS))
    args = parser.parse_args()

    samples = load_samples(args.data)[: args.limit]
    train = load_samples(args.train or Path(args.data).parent / "train")[: args.select]
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}; "
          f"{len(samples)} test photos of {args.data}", flush=True)
    rows = []
    for protocol in args.protocol:
        psm = best_tesseract_mode(train, protocol)
        methods = {"ours": ours(), "RapidOCR": rapidocr(detect=True),
                   "RapidOCR, recognition only": rapidocr(detect=False), f"Tesseract 5 (--psm {psm})": tesseract(psm)}
        results = run(methods, samples, protocol)
        base = results["ours"]
        rows += [(name, protocol, r, r["p50"] / base["p50"]) for name, r in results.items()]

    print("\n| method | protocol | exact number | p50 ms | p95 ms | p50 vs ours |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, protocol, r, ratio in rows:
        print(f"| {name} | {protocol} | {r['accuracy']:.1%} | {r['p50']:.1f} | {r['p95']:.1f} | "
              + ("1x" if name == "ours" else f"{ratio:.0f}x slower" if ratio >= 1 else f"{1 / ratio:.1f}x faster") + " |")


if __name__ == "__main__":
    main()
