"""Freeze a trained checkpoint into a LiteRT model and its model card.

    python -m model.export --run runs/base --out runs/base/svhn.tflite --test-data data/svhn/test

Writes the .tflite and its card beside it (runs/base/svhn.json: input size, training data and
steps, validation and test accuracy, date). --out model/svhn.tflite replaces the bundled reader
(the server loads it, or MODEL_PATH); a localiser's run (model.train_locator) goes to
--out model/locator.tflite the same way, and a drawing reader's (kept on handwriting:
--monitor val_handwriting_acc) to --out model/drawing.tflite. With --test-data the exported file itself is scored
through the runtime, so the card's figures are those of the file that ships.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
from pathlib import Path

from model.cli import InputError, said_plainly
from model.data import load_samples
from model.heatmap import GRID, LOCATOR_SIZE
from model.preprocess import INPUT_SIZE

# What each kind's card reads from train.json, which a run that did not finish lacks.
CARD_NEEDS = {"sequence": ("val_images", "best_val_number_acc", "best_epoch"),
              "drawing": ("best_val_handwriting_acc", "best_epoch"), "locator": ("val_images", "best_epoch")}
RESULTS = ("out", "best_val_number_acc", "best_val_found", "best_epoch", "confidence_threshold", "found_threshold")


def is_locator(trained: dict) -> bool:
    """A localiser's run (model.train_locator) records its heads' width and its "found" score; a reader's run neither."""
    return "head" in trained or "best_val_found" in trained


def export(checkpoint: Path, out: Path, quantize: str = "none") -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras  # TensorFlow and Keras are needed to export, never to serve
    import tensorflow as tf

    from model import ctc  # noqa: F401  (registers the ctc reader's decoding layer, which load_model must find)

    model = keras.models.load_model(checkpoint, compile=False)
    options = {"optimizations": [tf.lite.Optimize.DEFAULT]} if quantize == "dynamic" else {}
    out.parent.mkdir(parents=True, exist_ok=True)
    model.export(str(out), format="litert", verbose=False, **options)


def kind_of(trained: dict) -> str:
    """locator, drawing (a reader kept for handwriting: the canvas's) or sequence (the photo reader)."""
    if is_locator(trained):
        return "locator"
    return "drawing" if trained.get("monitor") == "val_handwriting_acc" else "sequence"


def finished_record(run: Path) -> dict:
    """The run's train.json, once its training finished: an interrupted run leaves a best.keras
    but no result for the card, which must be found out before the .tflite is written over."""
    path = run / "train.json"
    if not path.is_file():
        raise InputError(f"{path}: no such file (--run is a model.train or model.train_locator output folder)")
    trained = json.loads(path.read_text())
    missing = [key for key in CARD_NEEDS[kind_of(trained)] if key not in trained]
    if missing and not is_locator(trained) and (run / "log.csv").is_file():
        trained = stopped_early(run, trained)
        missing = [key for key in CARD_NEEDS[kind_of(trained)] if key not in trained]
    if missing:  # written at the end of training (model.train, model.ensemble, model.recover)
        raise InputError(f"{run} was interrupted: its train.json holds no result ({', '.join(missing)}); "
                         f"train it again to the end")
    return trained


def stopped_early(run: Path, trained: dict) -> dict:
    """A reader's run stopped before its last epoch (a GPU machine's run at its time limit,
    scripts/device_train.sh): best.keras holds its best epoch so far, which log.csv names."""
    monitor = trained.get("monitor", "auto")
    if monitor == "auto":  # as model.train's NumberAccuracy resolves it
        monitor = "val_score" if trained.get("mnist") else "val_number_acc"
    with (run / "log.csv").open(newline="") as file:
        epochs = [row for row in csv.DictReader(file) if row.get(monitor)]
    if not epochs:
        return trained
    best = max(epochs, key=lambda row: float(row[monitor]))  # the first of equals, as ModelCheckpoint keeps it
    found = {f"best_{name}": float(best[name]) for name in ("val_number_acc", "val_handwriting_acc") if best.get(name)}
    return dict(trained, best_epoch=int(best["epoch"]) + 1, stopped_after_epochs=len(epochs), **found)


def model_card(run: Path, out: Path, quantize: str, test: dict | None) -> dict:
    trained = finished_record(run)
    kind = kind_of(trained)
    card = {
        "name": f"svhn-{kind}-{datetime.date.today():%Y%m%d}-{run.name}",
        "file": out.name,
        "bytes": out.stat().st_size,
        "date": datetime.date.today().isoformat(),
        "quantization": quantize,
        "training": {k: v for k, v in trained.items() if k not in RESULTS},
    }
    if kind == "locator":
        card.update(
            input={"shape": [LOCATOR_SIZE, LOCATOR_SIZE, 1], "preprocess": "model/heatmap.py:locator_input (letterboxed grey)"},
            outputs={"locations": f"{GRID}x{GRID} cells x (P(number centre), offset x, offset y, log width, log height)"},
            validation={"pictures": f"{trained['val_images']} held-out photos as they are, the same in 3x scenes, "
                                    f"{trained['val_images']} pictures without digits",
                        "found": trained.get("best_val_found"), "best_epoch": trained.get("best_epoch")},
            found_threshold=trained.get("found_threshold"),
        )
    else:
        card.update(
            input={"shape": [INPUT_SIZE, INPUT_SIZE, 1], "preprocess": "model/preprocess.py:to_input (grey, per-image contrast)"},
            outputs={"length": "P(0..5 digits)", "digits": "5 positions x P(0-9, 10 = no digit)",
                     **({"columns": "16 columns x logits of 0-9, 10 = CTC blank (model/ctc.py)"}
                        if trained.get("sequence_head") == "ctc" else {})},
            validation={"images": trained["val_images"], "protocol": "crop",
                        "number_accuracy": trained["best_val_number_acc"], "best_epoch": trained["best_epoch"]}
            if kind == "sequence" else
            {"drawings": "500 numbers of 1-4 MNIST val digits (the train file's last 10,000), each cut around its digits' box",
             "number_accuracy": trained["best_val_handwriting_acc"], "best_epoch": trained["best_epoch"]},
            confidence_threshold=trained.get("confidence_threshold"),
        )
    card["test"] = test
    return card


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="training output folder (best.keras, train.json)")
    parser.add_argument("--checkpoint", default="best.keras")
    # No default: the bundled model/svhn.tflite is replaced only when named.
    parser.add_argument("--out", required=True, help="the .tflite to write (its card goes beside it), e.g. runs/base/svhn.tflite")
    parser.add_argument("--quantize", choices=["none", "dynamic"], default="none",
                        help="dynamic: int8 weights, float activations (4x smaller)")
    parser.add_argument("--test-data", help="a reader's only: labelled folder to score the exported file on (crop protocol)")
    args = parser.parse_args()
    run, out = Path(args.run), Path(args.out)
    with said_plainly():
        if not (run / args.checkpoint).is_file():
            raise InputError(f"{run / args.checkpoint}: no such checkpoint (--run is a model.train or model.train_locator output folder)")
        trained = finished_record(run)
        if args.test_data and is_locator(trained):
            # Its "found" threshold is only final after model.calibrate, which reads the card written here.
            parser.error("score a localiser with model.evaluate, after model.calibrate")
        # Before anything is written: a wrong folder must not leave a new model beside its old card.
        test_samples = load_samples(args.test_data) if args.test_data else None
    export(run / args.checkpoint, out, args.quantize)
    test = None
    if test_samples is not None:
        from model.evaluate import evaluate, summary
        from model.pipeline import Pipeline
        from model.runtime import DEFAULT_LOCATOR

        # The file just written, scored on its own part of the job: the reader alone on crops.
        result = evaluate(Pipeline(out, DEFAULT_LOCATOR), test_samples, "reader")
        print(summary(result))
        test = {"data": args.test_data, "reader": {k: v for k, v in result.items() if k != "readings"}}
    card = model_card(run, out, args.quantize, test)
    out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {out} ({card['bytes'] / 1e6:.1f} MB) and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
