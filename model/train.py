"""Train the sequence network on SVHN format 1, with a validation split, checkpoints and a fixed seed.

    python -m model.train --data ../shared/data/svhn --out runs/base

DATA is a labelled folder (labels.json or digitStruct.mat) or a root holding `train/`.
Each training batch mixes augmented real photos with numbers recombined from real digit crops
(model/synth.py). A fraction of the real photos is held out, never augmented, and read under
the crop protocol after every epoch; the best epoch on it is kept. Everything goes to --out
(outside git): best.keras, last.keras, log.csv and train.json, which `model.export` reads.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the log

import keras  # noqa: E402
import numpy as np
from PIL import Image

from model.augment import augmented_input
from model.data import MAX_DIGITS, Sample, load_samples
from model.decode import BLANK, decode_batch
from model.net import WIDTHS, build_model
from model.preprocess import INPUT_SIZE, protocol_crop, to_input, union_box
from model.synth import DigitBank

INPUT_SHAPE = (INPUT_SIZE, INPUT_SIZE, 1)


def labels_of(digits: tuple[int, ...]) -> tuple[int, np.ndarray]:
    sequence = np.full(MAX_DIGITS, BLANK, dtype=np.int32)
    sequence[: len(digits)] = digits[:MAX_DIGITS]
    return min(len(digits), MAX_DIGITS), sequence


class Batches(keras.utils.PyDataset):
    """Endless fresh augmentations: batch i of epoch e is drawn from a generator seeded by (seed, e, i)."""

    def __init__(self, samples: list[Sample], images: dict, bank: DigitBank, batch: int, steps: int,
                 synth_fraction: float, seed: int):
        super().__init__()
        self.samples, self.images, self.bank = samples, images, bank
        self.batch, self.steps, self.synth_fraction, self.seed = batch, steps, synth_fraction, seed
        self.epoch = 0

    def __len__(self) -> int:
        return self.steps

    def on_epoch_end(self) -> None:
        self.epoch += 1

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, self.epoch, index])
        x = np.empty((self.batch, *INPUT_SHAPE), np.float32)
        length = np.empty(self.batch, np.int32)
        digits = np.empty((self.batch, MAX_DIGITS), np.int32)
        for i in range(self.batch):
            if rng.random() < self.synth_fraction:
                image, number, boxes = self.bank.compose(rng)
            else:
                sample = self.samples[int(rng.integers(len(self.samples)))]
                image, number, boxes = self.images[sample.path], sample.digits, sample.boxes
            x[i] = augmented_input(image, union_box(list(boxes)), rng)
            length[i], digits[i] = labels_of(number)
        return x, {"length": length, "digits": digits}


class NumberAccuracy(keras.callbacks.Callback):
    """Whole-number accuracy on the held-out photos, logged as val_number_acc for checkpointing."""

    def __init__(self, x: np.ndarray, numbers: list[str]):
        super().__init__()
        self.x, self.numbers = x, numbers

    def on_epoch_end(self, epoch, logs=None):
        out = self.model.predict(self.x, batch_size=256, verbose=0)
        read = [number for number, _ in decode_batch(out["length"], out["digits"])]
        logs["val_number_acc"] = float(np.mean([r == t for r, t in zip(read, self.numbers)]))
        print(f" - val_number_acc: {logs['val_number_acc']:.4f}")


def split(samples: list[Sample], fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    order = np.random.default_rng(seed).permutation(len(samples))
    n_val = int(round(len(samples) * fraction))
    return [samples[i] for i in order[n_val:]], [samples[i] for i in order[:n_val]]


def train(data: str, out: str, epochs: int = 50, steps: int = 250, batch: int = 64, lr: float = 2e-3,
          val_fraction: float = 0.1, synth_fraction: float = 0.5, widths=WIDTHS, dense: int = 256,
          seed: int = 1234, verbose: int = 1) -> dict:
    keras.utils.set_random_seed(seed)
    root = Path(data)
    folder = root / "train" if (root / "train").is_dir() else root
    train_samples, val_samples = split(load_samples(folder), val_fraction, seed)
    images = {s.path: Image.open(s.path).convert("L") for s in train_samples + val_samples}
    bank = DigitBank(train_samples, images)
    batches = Batches(train_samples, images, bank, batch, steps, synth_fraction, seed)
    val_x = np.stack([to_input(protocol_crop(images[s.path], list(s.boxes))) for s in val_samples]) if val_samples else None

    model = build_model(tuple(widths), dense)
    schedule = keras.optimizers.schedules.CosineDecay(0.0, epochs * steps, warmup_target=lr, warmup_steps=steps)
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=1e-4),
        loss={"length": "sparse_categorical_crossentropy", "digits": "sparse_categorical_crossentropy"},
    )
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = dict(data=str(folder), epochs=epochs, steps=steps, batch=batch, lr=lr, val_fraction=val_fraction,
                  synth_fraction=synth_fraction, widths=list(widths), dense=dense, seed=seed,
                  train_images=len(train_samples), val_images=len(val_samples), digit_crops=sum(map(len, bank.crops)))
    print(json.dumps(config))
    (out_dir / "train.json").write_text(json.dumps(config, indent=2))  # updated with results at the end
    callbacks = [keras.callbacks.CSVLogger(str(out_dir / "log.csv"))]
    if val_x is not None:
        callbacks.insert(0, NumberAccuracy(val_x, [s.number for s in val_samples]))
        callbacks.append(keras.callbacks.ModelCheckpoint(str(out_dir / "best.keras"), monitor="val_number_acc", mode="max", save_best_only=True))
    started = time.time()
    history = model.fit(batches, epochs=epochs, callbacks=callbacks, verbose=verbose)
    model.save(out_dir / "last.keras")
    if val_x is None:
        model.save(out_dir / "best.keras")
    scores = history.history.get("val_number_acc", [])
    result = dict(config, train_seconds=round(time.time() - started), samples_seen=epochs * steps * batch,
                  best_val_number_acc=max(scores) if scores else None,
                  best_epoch=int(np.argmax(scores)) + 1 if scores else None)
    (out_dir / "train.json").write_text(json.dumps(result, indent=2))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="labelled SVHN folder, or a root with train/")
    parser.add_argument("--out", default="runs/latest", help="checkpoints and logs (keep outside git)")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--steps", type=int, default=250, help="batches per epoch")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--synth-fraction", type=float, default=0.5, help="share of recombined numbers per batch")
    parser.add_argument("--widths", type=lambda s: [int(v) for v in s.split(",")], default=list(WIDTHS))
    parser.add_argument("--dense", type=int, default=256)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--quiet", action="store_true", help="one line per epoch instead of a progress bar (for log files)")
    args = parser.parse_args()
    print(json.dumps(train(args.data, args.out, args.epochs, args.steps, args.batch, args.lr, args.val_fraction,
                           args.synth_fraction, args.widths, args.dense, args.seed, 2 if args.quiet else 1), indent=2))


if __name__ == "__main__":
    main()
