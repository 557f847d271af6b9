"""What both training scripts share: the photos and their split, the optimiser, and a recorded fit.

model/train.py (the reader) and model/train_locator.py (the localiser) differ in their
network, their pictures and their validation check; the rest is here, so the two runs hold
out the same photos, learn on the same schedule and leave the same files in --out.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np
from PIL import Image

from model.data import MAX_DIGITS, Sample, load_samples, split
from model.preprocess import protocol_crop, to_input


class SeededBatches(keras.utils.PyDataset):
    """Endless fresh examples: batch i of epoch e is drawn from a generator seeded by (seed, e, i),
    so a run is repeatable and no two epochs repeat. Subclasses fill `__getitem__`."""

    def __init__(self, batch: int, steps: int, seed: int):
        super().__init__()
        self.batch, self.steps, self.seed, self.epoch = batch, steps, seed, 0

    def __len__(self) -> int:
        return self.steps

    def on_epoch_end(self) -> None:
        self.epoch += 1

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index])


def training_photos(data: str, val_fraction: float, seed: int) -> tuple[Path, list[Sample], list[Sample], dict]:
    """-> (labelled folder, training samples, held-out samples, grey image of each by path)."""
    root = Path(data)
    folder = root / "train" if (root / "train").is_dir() else root
    readable = [s for s in load_samples(folder) if len(s.digits) <= MAX_DIGITS]  # drops 1 in 33,402 of SVHN train
    train_samples, val_samples = split(readable, val_fraction, seed)
    images = {s.path: Image.open(s.path).convert("L") for s in train_samples + val_samples}
    return folder, train_samples, val_samples, images


def crop_inputs(samples: list[Sample], images: dict) -> np.ndarray:
    """The held-out photos as the reader sees them under the crop protocol, never augmented."""
    return np.stack([to_input(protocol_crop(images[s.path], list(s.boxes))) for s in samples])


def compile_model(model: keras.Model, config, loss) -> None:
    """AdamW with one epoch of warm-up, then a cosine decay to zero at the last step."""
    total = config.epochs * config.steps
    schedule = keras.optimizers.schedules.CosineDecay(0.0, total, warmup_target=config.lr, warmup_steps=config.steps)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay), loss=loss)


def fit(model: keras.Model, batches, config, record: dict, check: keras.callbacks.Callback | None,
        monitor: str, verbose: int) -> dict:
    """Train, keeping the best epoch on `monitor` (logged by `check`) in --out with the last one,
    log.csv and train.json (the record, updated with the results at the end). -> the record."""
    out_dir = Path(config.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    record = dict(asdict(config), **record)
    print(json.dumps(record))
    (out_dir / "train.json").write_text(json.dumps(record, indent=2))
    callbacks = [keras.callbacks.CSVLogger(str(out_dir / "log.csv"))]
    if check is not None:
        callbacks = [check, *callbacks, keras.callbacks.ModelCheckpoint(
            str(out_dir / "best.keras"), monitor=monitor, mode="max", save_best_only=True)]
    started = time.time()
    history = model.fit(batches, epochs=config.epochs, callbacks=callbacks, verbose=verbose)
    model.save(out_dir / "last.keras")
    if check is None:
        model.save(out_dir / "best.keras")
    scores = history.history.get(monitor, [])
    record.update(train_seconds=round(time.time() - started), samples_seen=config.epochs * config.steps * config.batch,
                  best_epoch=int(np.argmax(scores)) + 1 if scores else None, **{f"best_{monitor}": max(scores) if scores else None})
    return record


def save_record(config, record: dict) -> dict:
    (Path(config.out) / "train.json").write_text(json.dumps(record, indent=2))
    return record
