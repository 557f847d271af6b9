"""Freeze a trained checkpoint into the bundled LiteRT model and its model card.

    python -m model.export --run runs/base --test-data ../shared/data/svhn/test

Writes model/svhn.tflite and model/svhn.json (input size, training data and steps,
validation and test accuracy, date). With --test-data the exported file itself is scored
through the runtime, so the card's figures are those of the file that ships.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
from pathlib import Path

from model.preprocess import INPUT_SIZE
from model.runtime import DEFAULT_MODEL


def export(checkpoint: Path, out: Path, quantize: str = "none") -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras  # TensorFlow and Keras are needed to export, never to serve
    import tensorflow as tf

    model = keras.models.load_model(checkpoint, compile=False)
    options = {"optimizations": [tf.lite.Optimize.DEFAULT]} if quantize == "dynamic" else {}
    out.parent.mkdir(parents=True, exist_ok=True)
    model.export(str(out), format="litert", verbose=False, **options)


def model_card(run: Path, out: Path, quantize: str, test: dict | None) -> dict:
    trained = json.loads((run / "train.json").read_text())
    return {
        "name": f"svhn-sequence-{datetime.date.today():%Y%m%d}-{run.name}",
        "file": out.name,
        "bytes": out.stat().st_size,
        "date": datetime.date.today().isoformat(),
        "input": {"shape": [INPUT_SIZE, INPUT_SIZE, 1], "preprocess": "model/preprocess.py:to_input (grey, per-image contrast)"},
        "outputs": {"length": "P(0..5 digits)", "digits": "5 positions x P(0-9, 10 = no digit)"},
        "quantization": quantize,
        "training": {k: v for k, v in trained.items()
                     if k not in ("out", "best_val_number_acc", "best_epoch", "confidence_threshold")},
        "validation": {"images": trained["val_images"], "protocol": "crop",
                       "number_accuracy": trained["best_val_number_acc"], "best_epoch": trained["best_epoch"]},
        "confidence_threshold": trained.get("confidence_threshold"),
        "test": test,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="training output folder (best.keras, train.json)")
    parser.add_argument("--checkpoint", default="best.keras")
    parser.add_argument("--out", default=str(DEFAULT_MODEL))
    parser.add_argument("--quantize", choices=["none", "dynamic"], default="none",
                        help="dynamic: int8 weights, float activations (4x smaller)")
    parser.add_argument("--test-data", help="labelled folder to score the exported file on (crop and whole)")
    args = parser.parse_args()
    run, out = Path(args.run), Path(args.out)
    export(run / args.checkpoint, out, args.quantize)
    test = None
    if args.test_data:
        from model.data import load_samples
        from model.evaluate import PROTOCOLS, evaluate, summary
        from model.runtime import Reader

        reader, samples = Reader(out), load_samples(args.test_data)
        results = {p: evaluate(reader, samples, p) for p in PROTOCOLS}
        for result in results.values():
            print(summary(result))
        test = {"data": args.test_data, **{p: {k: v for k, v in r.items() if k != "readings"} for p, r in results.items()}}
    card = model_card(run, out, args.quantize, test)
    out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {out} ({card['bytes'] / 1e6:.1f} MB) and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
