"""Score a frozen model on a labelled SVHN folder through the product's own pipeline.

    python -m model.evaluate --data ../shared/data/svhn/test --report model/report/test.json

Two protocols: `crop` cuts each photo to the digits' union box grown by 30% on every side
(Goodfellow et al.), then hands the crop to the runtime as a visitor's upload would be;
`whole` hands over the photo as it is. Prints whole-number accuracy, per-digit accuracy and
accuracy by number length; writes everything, with each image's reading, as JSON.
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from model.data import Sample, load_samples, split
from model.preprocess import protocol_crop
from model.runtime import DEFAULT_MODEL, Reader

PROTOCOLS = ("crop", "whole")


def score(readings: list[str], truths: list[str]) -> dict:
    """Exact-number, per-digit (each true digit read right at its position) and by-length accuracy."""
    by_length: dict[int, list[bool]] = defaultdict(list)
    digits_right = digits_total = 0
    for read, truth in zip(readings, truths):
        by_length[len(truth)].append(read == truth)
        digits_total += len(truth)
        digits_right += sum(r == t for r, t in zip(read, truth))
    exact = [ok for oks in by_length.values() for ok in oks]
    return {
        "images": len(truths),
        "number_accuracy": sum(exact) / max(len(exact), 1),
        "digit_accuracy": digits_right / max(digits_total, 1),
        "by_length": {str(k): {"images": len(v), "number_accuracy": sum(v) / len(v)} for k, v in sorted(by_length.items())},
    }


def evaluate(reader: Reader, samples: list[Sample], protocol: str) -> dict:
    from app.images import decode_image  # the product's own decoder, so the figures are the product's

    readings = []
    for sample in samples:
        image = decode_image(sample.path.read_bytes(), max_pixels=10**9)
        if protocol == "crop":
            image = protocol_crop(image, list(sample.boxes))
        reading = reader.read(image)
        readings.append({"image": sample.path.name, "truth": sample.number, "read": reading.number,
                         "confidence": round(reading.confidence, 4)})
    return dict(score([r["read"] for r in readings], [s.number for s in samples]), protocol=protocol, readings=readings)


def evaluate_handwriting(reader: Reader, mnist: str, count: int = 1000, seed: int = 2014) -> dict:
    """Numbers of 1-4 MNIST *test* digits drawn as dark strokes on a light sheet, read whole as the canvas sends them."""
    import numpy as np

    from model.handwriting import Handwriting, load_mnist

    writer, rng = Handwriting(*load_mnist(mnist, "test")), np.random.default_rng(seed)
    readings = []
    for i in range(count):
        canvas, digits, _ = writer.compose(rng)
        reading = reader.read(canvas.convert("RGB"))
        readings.append({"image": f"mnist-test-{i}", "truth": "".join(map(str, digits)), "read": reading.number,
                         "confidence": round(reading.confidence, 4)})
    return dict(score([r["read"] for r in readings], [r["truth"] for r in readings]),
                protocol="handwriting", readings=readings)


def validation_samples(run: str) -> list[Sample]:
    """The photos a training run held out, rebuilt from its recorded data folder, fraction and seed."""
    record = json.loads((Path(run) / "train.json").read_text())
    return split(load_samples(record["data"]), record["val_fraction"], record["seed"])[1]


def summary(result: dict) -> str:
    lengths = ", ".join(f"{k} digits {v['number_accuracy']:.1%} of {v['images']}" for k, v in result["by_length"].items())
    return (f"{result['protocol']:>5}: numbers {result['number_accuracy']:.2%}  digits {result['digit_accuracy']:.2%}"
            f"  ({result['images']} images; by length: {lengths})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="labelled SVHN folder (labels.json or digitStruct.mat)")
    source.add_argument("--val-of", metavar="RUN", help="the validation photos held out by a training run (its train.json)")
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--protocol", choices=PROTOCOLS, nargs="+", default=list(PROTOCOLS))
    parser.add_argument("--limit", type=int, help="only the first N images")
    parser.add_argument("--mnist", help="MNIST folder: also read 1,000 numbers drawn from MNIST test digits")
    parser.add_argument("--report", help="write the JSON report here")
    args = parser.parse_args()
    reader = Reader(args.model)
    samples = (validation_samples(args.val_of) if args.val_of else load_samples(args.data))[: args.limit]
    results = {p: evaluate(reader, samples, p) for p in args.protocol}
    if args.mnist:
        results["handwriting"] = evaluate_handwriting(reader, args.mnist)
    for result in results.values():
        print(summary(result))
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(json.dumps({"model": reader.name, "data": args.data or f"validation of {args.val_of}",
                                                 "confidence_threshold": reader.card.get("confidence_threshold"),
                                                 **results}, indent=1))


if __name__ == "__main__":
    main()
