"""Score the frozen models on a labelled SVHN folder through the product's own pipeline.

    python -m model.evaluate --data data/svhn/test --mnist data/mnist --report model/report/test.json

Each picture is decoded by the web app's decoder and answered as POST /predict answers it
(localiser, then reader: model/pipeline.py). Protocols:
  crop     the digits' union box grown by 30% on every side, kept inside the photo (Goodfellow et al.)
  whole    the photo as it is
  scene    the photo pasted at a random spot of a background 3 times its width and height
           (textures, or stretches of other photos of the folder away from their digits);
           --scene-factor sets another size, to see how small a number can be and still be read
  none     pictures without digits (regions of the photos away from any digit box, plain
           textures): the figure is the share for which a number is reported, lower is better
  reader   the crop protocol read by the reader alone, without the localiser
With --mnist, also numbers of 1-4 MNIST digits drawn dark on a light sheet, read as the pad's
drawings are (POST /predict?kind=drawing), or with --mnist-as photo as an upload would be:
from MNIST test by default, or with --mnist-split val from the train file's last 10,000 images
(model/handwriting.py), for tuning without looking at test. Prints every figure; --report
writes them with each picture's reading.
"""
from __future__ import annotations

import argparse
import io
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from model.cli import said_plainly
from model.data import Sample, held_out_by, load_samples, open_image, split
from model.pipeline import Pipeline
from model.preprocess import protocol_crop, union_box
from model.runtime import DEFAULT_DRAWING, DEFAULT_LOCATOR, DEFAULT_MODEL
from model.scenes import negatives_of, scene_of
from model.synth import walls_of

PROTOCOLS = ("crop", "whole", "scene", "none", "reader")
SEED = 2014  # scenes and digit-free pictures are drawn the same way every run
SCENE_FACTOR = 3.0  # the scene protocol's background, in the photo's widths and heights


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


def decoded(image: Image.Image) -> Image.Image:
    """A picture through the product's own decoder (as an upload would be), so the figures are the product's."""
    from app.images import decode_image

    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return decode_image(buffer.getvalue(), max_pixels=10**9)


def pictures(samples: list[Sample], protocol: str, scene_factor: float = SCENE_FACTOR) -> list[tuple[str, Image.Image, str]]:
    """(name, picture, true number) for each sample under a protocol; for `none` the number is ""."""
    images = {s.path: open_image(s.path, "RGB") for s in samples}
    rng = np.random.default_rng(SEED)
    if protocol == "none":
        grey = {path: image.convert("L") for path, image in images.items()}
        return [(f"none-{i}", p.convert("RGB"), "") for i, p in enumerate(negatives_of(samples, grey, rng, len(samples)))]
    out = []
    walls = [wall for s in samples for wall in walls_of(s, images[s.path], min_size=24)] if protocol == "scene" else []
    for s in samples:
        image = images[s.path]
        if protocol in ("crop", "reader"):
            image = protocol_crop(image, list(s.boxes))
        elif protocol == "scene":
            image = scene_of(image, [union_box(list(s.boxes))], rng, walls, factor=scene_factor)[0]
        out.append((s.path.name, image, s.number))
    return out


def evaluate(pipeline: Pipeline, samples: list[Sample], protocol: str, scene_factor: float = SCENE_FACTOR) -> dict:
    readings = []
    for name, picture, truth in pictures(samples, protocol, scene_factor):
        image = decoded(picture)
        if protocol == "reader":
            reading = pipeline.reader.read(image)
            read, confidence, box = reading.number, reading.confidence, None
        else:
            answer = pipeline.read(image)
            read = answer.number
            confidence = answer.best.reading.confidence if answer.found else 0.0
            box = [round(v, 1) for v in answer.best.box] if answer.found else None
        readings.append({"image": name, "truth": truth, "read": read, "confidence": round(confidence, 4), "box": box})
    if protocol == "none":
        reported = sum(r["read"] != "" for r in readings)
        return {"protocol": protocol, "images": len(readings), "number_reported": reported / max(len(readings), 1),
                "readings": readings}
    result = dict(score([r["read"] for r in readings], [r["truth"] for r in readings]), protocol=protocol, readings=readings)
    return dict(result, scene_factor=scene_factor) if protocol == "scene" else result


def evaluate_handwriting(pipeline: Pipeline, mnist: str, count: int = 1000, seed: int = SEED,
                         split: str = "test", kind: str = "drawing") -> dict:
    """Numbers of 1-4 MNIST digits of a split ("test" or "val") drawn as dark strokes on a light
    sheet, read as the pad's drawings (kind "drawing") or as uploaded photos (kind "photo")."""
    from model.handwriting import Handwriting, load_mnist

    writer, rng = Handwriting(*load_mnist(mnist, split)), np.random.default_rng(seed)
    read = pipeline.read_drawing if kind == "drawing" else pipeline.read
    readings = []
    for i in range(count):
        canvas, digits, _ = writer.compose(rng)
        answer = read(decoded(canvas.convert("RGB")))
        readings.append({"image": f"mnist-{split}-{i}", "truth": "".join(map(str, digits)), "read": answer.number,
                         "confidence": round(answer.best.reading.confidence, 4) if answer.found else 0.0})
        if kind == "drawing":  # the reading of the whole ink (the one with a length distribution), chosen or not
            readings[-1]["whole_ink"] = next((c.reading.number for c in answer.candidates if c.reading.length_probs), "")
    result = dict(score([r["read"] for r in readings], [r["truth"] for r in readings]),
                  protocol="handwriting", mnist_split=split, read_as=kind, readings=readings)
    if kind == "drawing":  # what reading piece by piece adds
        result["whole_ink_only"] = score([r["whole_ink"] for r in readings], [r["truth"] for r in readings])["number_accuracy"]
    return result


def validation_samples(run: str) -> list[Sample]:
    """The photos a training run held out, rebuilt from its record (model.data.held_out_by)."""
    data, fraction, seed = held_out_by(json.loads((Path(run) / "train.json").read_text()))
    return split(load_samples(data), fraction, seed)[1]


def summary(result: dict) -> str:
    if result["protocol"] == "none":
        return f" none: a number reported for {result['number_reported']:.2%} of {result['images']} pictures without digits"
    lengths = ", ".join(f"{k} digits {v['number_accuracy']:.1%} of {v['images']}" for k, v in result["by_length"].items())
    scene = f" {result['scene_factor']:g}x" if result.get("scene_factor", SCENE_FACTOR) != SCENE_FACTOR else ""
    name = result["protocol"] + scene + (f" (MNIST {result['mnist_split']}, read as a {result['read_as']})"
                                 if "mnist_split" in result else "")
    whole = f"; the whole ink alone {result['whole_ink_only']:.2%}" if "whole_ink_only" in result else ""
    return (f"{name:>5}: numbers {result['number_accuracy']:.2%}  digits {result['digit_accuracy']:.2%}"
            f"  ({result['images']} images; by length: {lengths}){whole}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="labelled SVHN folder (labels.json or digitStruct.mat)")
    source.add_argument("--val-of", metavar="RUN", help="the validation photos held out by a training run (its train.json)")
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="the reader (.tflite)")
    parser.add_argument("--locator", default=str(DEFAULT_LOCATOR), help="the localiser (.tflite)")
    parser.add_argument("--protocol", choices=PROTOCOLS, nargs="+", default=list(PROTOCOLS))
    parser.add_argument("--scene-factor", type=float, default=SCENE_FACTOR,
                        help="the scene protocol's background size, in the photo's widths and heights")
    parser.add_argument("--limit", type=int, help="only the first N images")
    parser.add_argument("--mnist", help="MNIST folder: also read 1,000 numbers drawn from MNIST digits")
    parser.add_argument("--mnist-split", choices=("val", "test"), default="test",
                        help="which MNIST digits --mnist draws from: val for tuning, test for the final figure")
    parser.add_argument("--mnist-as", choices=("drawing", "photo"), default="drawing",
                        help="read the drawings as the pad sends them (kind=drawing) or as uploaded photos")
    parser.add_argument("--drawing-model", default=str(DEFAULT_DRAWING), help="the drawing reader (.tflite)")
    parser.add_argument("--report", help="write the JSON report here")
    args = parser.parse_args()
    pipeline = Pipeline(args.model, args.locator, args.drawing_model)
    # First, which files the figures below belong to: users score their own exports with this.
    drawing = (f", drawing reader {pipeline.drawing_reader.name} ({args.drawing_model})"
               if args.mnist and args.mnist_as == "drawing" else "")
    print(f"scoring reader {pipeline.reader.name} ({args.model}), localiser {pipeline.locator.name} ({args.locator})"
          + drawing)
    samples = (validation_samples(args.val_of) if args.val_of else load_samples(args.data))[: args.limit]
    results = {p: evaluate(pipeline, samples, p, args.scene_factor) for p in args.protocol}
    if args.mnist:
        results["handwriting"] = evaluate_handwriting(pipeline, args.mnist, split=args.mnist_split, kind=args.mnist_as)
    for result in results.values():
        print(summary(result))
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(json.dumps({
            "model": pipeline.reader.name, "locator": pipeline.locator.name, "drawing_model": pipeline.drawing_reader.name,
            "data": args.data or f"validation of {args.val_of}",
            # "confident" in the API: the pipeline's threshold (model.calibrate; the localiser card's key), not
            # the reader's own (its card's "confidence_threshold")
            "confident_threshold": pipeline.confident_threshold, "reader_confidence_threshold": pipeline.reader.threshold,
            "found_threshold": pipeline.locator.threshold,
            **results}, indent=1))


if __name__ == "__main__":
    with said_plainly():  # a wrong folder or run is one line, not a traceback
        main()
