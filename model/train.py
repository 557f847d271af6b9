"""Train the sequence network on SVHN format 1, with a validation split, checkpoints and a fixed seed.

    python -m model.train --data ../shared/data/svhn --out runs/base

DATA is a labelled folder (labels.json or digitStruct.mat) or a root holding `train/`.
Each training batch mixes augmented real photos with numbers recombined from real digit crops
(model/synth.py) and, when asked for, handwritten numbers from MNIST train (--mnist DIR) and
unlabelled photos read confidently by an earlier model (--pseudo FILE, see model/pseudo.py).
A fraction of the real photos is held out, never augmented, and read under
the crop protocol after every epoch; the best epoch on it is kept. Everything goes to --out
(outside git): best.keras, last.keras, log.csv and train.json, which `model.export` reads.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the log

import keras  # noqa: E402
import numpy as np
from PIL import Image

from model.augment import augmented_input
from model.cli import parse_config
from model.data import MAX_DIGITS, Sample, load_samples, split
from model.decode import BLANK, confidence_threshold, decode_batch
from model.handwriting import Handwriting, load_mnist
from model.net import WIDTHS, build_model
from model.pseudo import load_pseudo_labels, pseudo_photos
from model.preprocess import INPUT_SIZE, protocol_crop, to_input, union_box
from model.synth import DigitBank

INPUT_SHAPE = (INPUT_SIZE, INPUT_SIZE, 1)
CONFIDENT_ACCURACY = 0.98  # "confident" readings are right this often on validation
Source = Callable[[np.random.Generator], tuple[Image.Image, tuple[int, ...], tuple[float, float, float, float]]]


def labels_of(digits: tuple[int, ...]) -> tuple[int, np.ndarray]:
    sequence = np.full(MAX_DIGITS, BLANK, dtype=np.int32)
    sequence[: len(digits)] = digits
    return len(digits), sequence


class Batches(keras.utils.PyDataset):
    """Endless fresh augmentations: batch i of epoch e is drawn from a generator seeded by (seed, e, i).

    Each example comes from one source, picked with the source's share: a source draws a
    picture, its digits and the digits' union box; augmentation then jitters a crop around it.
    """

    def __init__(self, sources: list[tuple[float, Source]], batch: int, steps: int, seed: int):
        super().__init__()
        shares = np.array([share for share, _ in sources], dtype=np.float64)
        self.shares, self.sources = shares / shares.sum(), [source for _, source in sources]
        self.batch, self.steps, self.seed = batch, steps, seed
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
            image, number, box = self.sources[rng.choice(len(self.sources), p=self.shares)](rng)
            x[i] = augmented_input(image, box, rng)
            length[i], digits[i] = labels_of(number)
        return x, {"length": length, "digits": digits}


def real_photos(samples: list[Sample], images: dict) -> Source:
    def draw(rng):
        sample = samples[int(rng.integers(len(samples)))]
        return images[sample.path], sample.digits, union_box(list(sample.boxes))
    return draw


def composed(generator) -> Source:
    """A generator's compose(rng) -> (image, digits, digit boxes) as a source."""
    def draw(rng):
        image, digits, boxes = generator.compose(rng)
        return image, digits, union_box(list(boxes))
    return draw


class NumberAccuracy(keras.callbacks.Callback):
    """Whole-number accuracy on the held-out photos, logged as val_number_acc for checkpointing.

    It also keeps the readings of the best epoch (the one ModelCheckpoint saves: strictly
    better than any before), so the confidence threshold needs no second pass over the data.
    """

    def __init__(self, x: np.ndarray, numbers: list[str]):
        super().__init__()
        self.x, self.numbers = x, numbers
        self.best_accuracy, self.best_readings = -1.0, []

    def on_epoch_end(self, epoch, logs=None):
        out = self.model.predict(self.x, batch_size=256, verbose=0)
        readings = decode_batch(out["length"], out["digits"])
        logs["val_number_acc"] = float(np.mean([r == t for (r, _), t in zip(readings, self.numbers)]))
        if logs["val_number_acc"] > self.best_accuracy:
            self.best_accuracy, self.best_readings = logs["val_number_acc"], readings
        print(f" - val_number_acc: {logs['val_number_acc']:.4f}")

    def threshold(self) -> float:
        """The confidence above which the best epoch reads CONFIDENT_ACCURACY of validation numbers right."""
        confidences = np.array([c for _, c in self.best_readings])
        correct = np.array([r == t for (r, _), t in zip(self.best_readings, self.numbers)])
        return confidence_threshold(confidences, correct, CONFIDENT_ACCURACY)


@dataclass
class Config:
    data: str  # labelled SVHN folder, or a root with train/
    out: str = "runs/latest"  # checkpoints and logs (keep outside git)
    epochs: int = 50
    steps: int = 250  # batches per epoch
    batch: int = 64
    lr: float = 2e-3
    val_fraction: float = 0.1
    synth_fraction: float = 0.5  # share of numbers recombined from real digit crops
    mnist: str | None = None  # MNIST folder: adds handwritten numbers (train split only)
    handwriting_fraction: float = 0.1
    pseudo: str | None = None  # pseudo-labels from model.pseudo: adds unlabelled photos
    pseudo_fraction: float = 0.2
    widths: tuple[int, ...] = WIDTHS
    dense: int = 256
    seed: int = 1234


def sources_for(config: Config, train_samples: list[Sample], images: dict) -> tuple[list, dict]:
    """The training mix: each optional source takes its share, real photos take the rest."""
    bank = DigitBank(train_samples, images)
    mix = [(config.synth_fraction, composed(bank))]
    counts = {"digit_crops": sum(map(len, bank.crops))}
    if config.mnist:
        mix.append((config.handwriting_fraction, composed(Handwriting(*load_mnist(config.mnist, "train")))))
    if config.pseudo:
        photos = load_pseudo_labels(config.pseudo)
        mix.append((config.pseudo_fraction, pseudo_photos(photos)))
        counts["pseudo_labelled_photos"] = len(photos)
    rest = 1 - sum(share for share, _ in mix)
    if rest < 0:
        raise ValueError(f"the shares of the optional sources add up to {1 - rest:.2f}, more than 1")
    mix.insert(0, (rest, real_photos(train_samples, images)))
    return mix, counts


def train(config: Config, verbose: int = 1) -> dict:
    keras.utils.set_random_seed(config.seed)
    root = Path(config.data)
    folder = root / "train" if (root / "train").is_dir() else root
    readable = [s for s in load_samples(folder) if len(s.digits) <= MAX_DIGITS]  # drops 1 in 33,402 of SVHN train
    train_samples, val_samples = split(readable, config.val_fraction, config.seed)
    images = {s.path: Image.open(s.path).convert("L") for s in train_samples + val_samples}
    mix, counts = sources_for(config, train_samples, images)
    batches = Batches(mix, config.batch, config.steps, config.seed)
    val_x = np.stack([to_input(protocol_crop(images[s.path], list(s.boxes))) for s in val_samples]) if val_samples else None

    model = build_model(tuple(config.widths), config.dense)
    total = config.epochs * config.steps
    schedule = keras.optimizers.schedules.CosineDecay(0.0, total, warmup_target=config.lr, warmup_steps=config.steps)
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=1e-4),
        loss={"length": "sparse_categorical_crossentropy", "digits": "sparse_categorical_crossentropy"},
    )
    out_dir = Path(config.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    record = dict(asdict(config), data=str(folder), train_images=len(train_samples), val_images=len(val_samples), **counts)
    print(json.dumps(record))
    (out_dir / "train.json").write_text(json.dumps(record, indent=2))  # updated with results at the end
    callbacks = [keras.callbacks.CSVLogger(str(out_dir / "log.csv"))]
    validation = NumberAccuracy(val_x, [s.number for s in val_samples]) if val_x is not None else None
    if validation:
        callbacks.insert(0, validation)
        callbacks.append(keras.callbacks.ModelCheckpoint(str(out_dir / "best.keras"), monitor="val_number_acc",
                                                         mode="max", save_best_only=True))
    started = time.time()
    history = model.fit(batches, epochs=config.epochs, callbacks=callbacks, verbose=verbose)
    model.save(out_dir / "last.keras")
    if val_x is None:
        model.save(out_dir / "best.keras")
    scores = history.history.get("val_number_acc", [])
    record.update(train_seconds=round(time.time() - started), samples_seen=total * config.batch,
                  best_val_number_acc=max(scores) if scores else None,
                  best_epoch=int(np.argmax(scores)) + 1 if scores else None,
                  confidence_threshold=validation.threshold() if validation else None)
    (out_dir / "train.json").write_text(json.dumps(record, indent=2))
    return record


def main() -> None:
    config, quiet = parse_config(Config, __doc__)
    print(json.dumps(train(config, verbose=2 if quiet else 1), indent=2))


if __name__ == "__main__":
    main()
