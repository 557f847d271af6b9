"""Several trained readers as one network that averages their probabilities.

    python -m model.ensemble --runs runs/stage4 runs/reg3 --out runs/ensemble
    python -m model.export --run runs/ensemble --out runs/ensemble/svhn.tflite --quantize dynamic

Readers trained apart (another start, mix and regularisation) misread different photos, so the
average of their probabilities, head by head, is right more often than either. The result is a
run folder like model.train's: best.keras (one input, the same two heads, so serving and export
take it as they take one reader) and train.json (each member's record, and the ensemble's own
accuracy and confidence threshold on the validation photos that every member held out).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import keras
import numpy as np

from model.cli import said_plainly
from model.data import held_out_by
from model.decode import CONFIDENT_ACCURACY, confidence_threshold, decode_batch
from model.fitting import crop_inputs, training_photos
from model.preprocess import INPUT_SIZE

HEADS = ("length", "digits")


def average(members: list[keras.Model]) -> keras.Model:
    image = keras.Input((INPUT_SIZE, INPUT_SIZE, 1), name="image")
    for i, member in enumerate(members):
        member.name = f"member_{i}"  # two runs of one architecture share a name, which a Model refuses
    outputs = [member(image) for member in members]
    heads = {head: keras.layers.Average(name=head)([out[head] for out in outputs]) for head in HEADS}
    return keras.Model(image, heads, name="svhn_sequence_ensemble")


def build(runs: list[Path], out: Path) -> dict:
    records = [json.loads((run / "train.json").read_text()) for run in runs]
    if len({held_out_by(record) for record in records}) != 1:
        raise ValueError("the members held out different photos: their ensemble has no validation set")
    model = average([keras.models.load_model(run / "best.keras", compile=False) for run in runs])
    data, fraction, seed = held_out_by(records[0])
    _, train_samples, val_samples, images = training_photos(data, fraction, seed)
    predicted = model.predict(crop_inputs(val_samples, images), batch_size=256, verbose=0)
    readings = decode_batch(predicted["length"], predicted["digits"])
    correct = np.array([number == s.number for (number, _), s in zip(readings, val_samples)])
    record = {
        "members": [dict(record, out=str(run)) for record, run in zip(records, runs)],
        "data": data, "val_fraction": fraction, "seed": seed, "val_seed": seed,
        "train_images": len(train_samples), "val_images": len(val_samples), "params": model.count_params(),
        "best_val_number_acc": float(correct.mean()), "best_epoch": None,
        "confidence_threshold": confidence_threshold(np.array([c for _, c in readings]), correct, CONFIDENT_ACCURACY),
    }
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "best.keras")
    (out / "train.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", required=True, help="model.train output folders (best.keras, train.json)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    record = build([Path(run) for run in args.runs], Path(args.out))
    print(f"{len(args.runs)} readers averaged into {args.out}: validation {record['best_val_number_acc']:.1%} exact, "
          f"confident from {record['confidence_threshold']:.3f}")


if __name__ == "__main__":
    with said_plainly():  # a wrong folder or file is one line, not a traceback
        main()
