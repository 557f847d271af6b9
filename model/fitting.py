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
from model.cli import InputError
from model.data import MAX_DIGITS, Sample, labelled_folder, load_samples, open_image, split
from model.preprocess import protocol_crop, to_input


class SeededBatches(keras.utils.PyDataset):
    """Endless fresh examples: batch i of epoch e is drawn from a generator seeded by (seed, e, i),
    so a run is repeatable and no two epochs repeat. Subclasses fill `__getitem__`."""

    def __init__(self, batch: int, steps: int, seed: int, workers: int = 1):
        # Processes, not threads: drawing a batch is Python and Pillow work that holds the GIL, so
        # two threads drew no faster than one (1,470 against 1,410 examples a second). Each worker
        # draws batch i from (seed, epoch, i) alone, so any number of them draws the same batches.
        super().__init__(workers=workers, use_multiprocessing=workers > 1)
        self.batch, self.steps, self.seed, self.epoch = batch, steps, seed, 0

    def __len__(self) -> int:
        return self.steps

    def on_epoch_end(self) -> None:
        self.epoch += 1

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index])


def training_photos(data: str, val_fraction: float, seed: int) -> tuple[Path, list[Sample], list[Sample], dict]:
    """-> (labelled folder, training samples, held-out samples, grey image of each by path)."""
    folder = labelled_folder(data)
    readable = [s for s in load_samples(folder) if len(s.digits) <= MAX_DIGITS]  # drops 1 in 33,402 of SVHN train
    train_samples, val_samples = split(readable, val_fraction, seed)
    images = {s.path: open_image(s.path, "L") for s in train_samples + val_samples}
    return folder, train_samples, val_samples, images


def crop_inputs(samples: list[Sample], images: dict) -> np.ndarray:
    """The held-out photos as the reader sees them under the crop protocol, never augmented."""
    return np.stack([to_input(protocol_crop(images[s.path], list(s.boxes))) for s in samples])


def compile_model(model: keras.Model, config, loss) -> None:
    """AdamW with one epoch of warm-up, then a cosine decay; or, in a run whose weights are averaged
    (--average-from), the rate held after the warm-up (alpha=1).

    Keras counts the decay's steps after the warm-up's, so the rate reaches zero one epoch after
    the last step: at the last one it is still sin^2(pi / 2E) of its peak for E epochs (0.1% for
    50 epochs, 3.8% for 8). The bundled models were trained so; kept for them to stay reproducible."""
    total = config.epochs * config.steps
    hold = 1.0 if config.average_from else 0.0
    schedule = keras.optimizers.schedules.CosineDecay(0.0, total, alpha=hold, warmup_target=config.lr,
                                                      warmup_steps=config.steps)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay), loss=loss)


class WeightAverage(keras.callbacks.Callback):
    """Stochastic weight averaging (Izmailov et al. 2018): at a held rate the weights wander about
    a wide minimum from epoch to epoch, and their mean lies nearer its middle than any of them.
    Validation swings by several photos between such epochs, so the best one of them is partly
    luck on 200 photos; the mean of the epochs from `first` on is chosen before any is scored."""

    def __init__(self, first: int):
        super().__init__()
        self.first, self.count, self.mean = first, 0, None

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 < self.first:
            return
        self.count += 1
        weights = self.model.get_weights()
        if self.mean is None:
            self.mean = [w.astype(np.float64) for w in weights]
        for mean, w in zip(self.mean, weights):
            if np.issubdtype(w.dtype, np.floating):
                mean += (w - mean) / self.count
            else:  # a counter or a seed, not a weight: the last one stands
                mean[...] = w

    def apply(self, batches, steps: int = 200) -> None:
        """Set the mean weights, then batch-norm statistics of their own: the running ones
        belong to the last epoch's weights, and a mean of statistics is not the statistics of
        the mean. A cumulative average (momentum i/(i+1)) over `steps` training batches."""
        self.model.set_weights([m.astype(w.dtype) for m, w in zip(self.mean, self.model.get_weights())])
        norms = [layer for layer in self.model.layers if isinstance(layer, keras.layers.BatchNormalization)]
        momenta = [layer.momentum for layer in norms]
        for i in range(min(steps, len(batches))):
            for layer in norms:
                layer.momentum = i / (i + 1)
            self.model(batches[i][0], training=True)
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum


def fit(model: keras.Model, batches, config, record: dict, check: keras.callbacks.Callback | None,
        monitor: str, verbose: int) -> dict:
    """Train, keeping the best epoch on `monitor` (logged by `check`), or with --average-from the
    mean of the last epochs' weights, in --out as best.keras, with the last epoch, log.csv and
    train.json (the record, updated with the results at the end). -> the record."""
    if config.average_from and not 1 <= config.average_from <= config.epochs:
        raise InputError(f"--average-from {config.average_from}: the epochs are 1 to {config.epochs}")
    out_dir = Path(config.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    record = dict(asdict(config), **record)
    print(json.dumps(record))
    (out_dir / "train.json").write_text(json.dumps(record, indent=2))
    callbacks = [keras.callbacks.CSVLogger(str(out_dir / "log.csv"))]
    average = WeightAverage(config.average_from) if config.average_from else None
    if check is not None:
        callbacks.insert(0, check)
        if average is None:
            callbacks.append(keras.callbacks.ModelCheckpoint(str(out_dir / "best.keras"), monitor=monitor, mode="max",
                                                             save_best_only=True))
    if average is not None:
        callbacks.append(average)
    started = time.time()
    history = model.fit(batches, epochs=config.epochs, callbacks=callbacks, verbose=verbose)
    model.save(out_dir / "last.keras")
    scores = history.history.get(monitor, [])
    best = dict(best_epoch=int(np.argmax(scores)) + 1 if scores else None, **{f"best_{monitor}": max(scores) if scores else None})
    if average is not None:
        average.apply(batches)
        best = dict(best_epoch=None, averaged_epochs=[config.average_from, config.epochs], **{f"best_{monitor}": None})
        if check is not None:  # the mean is kept whatever the epochs scored: the check scores it as its best
            check.best, logs = -1.0, {}
            check.on_epoch_end(config.epochs, logs)
            best[f"best_{monitor}"] = logs[monitor]
    if average is not None or check is None:
        model.save(out_dir / "best.keras")
    record.update(train_seconds=round(time.time() - started), samples_seen=config.epochs * config.steps * config.batch, **best)
    return record


def save_record(config, record: dict) -> dict:
    (Path(config.out) / "train.json").write_text(json.dumps(record, indent=2))
    return record
