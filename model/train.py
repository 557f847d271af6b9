"""Train the reader (the sequence network, or with --sequence-head ctc the column reader) on SVHN
format 1, with a validation split, checkpoints and a fixed seed.

    python -m model.train --data data/svhn --out runs/base
    python -m model.train --recipe model/recipe.json --data DIR --unlabelled DIR --mnist DIR   (the bundled model)

With --recipe, the flags are the recipe's own: `python -m model.train --recipe FILE --help`.

DATA is a labelled folder (labels.json or digitStruct.mat) or a root holding `train/`.
Each training batch mixes augmented real photos with numbers recombined from real digit crops
(model/synth.py), numbers rendered from installed fonts (model/render.py, --font-fraction),
regions without digits labelled as no number (--blank-fraction) and, when asked for,
handwritten numbers from MNIST train (--mnist DIR) and unlabelled photos read confidently by
an earlier model (--pseudo FILE, see model/pseudo.py). --init starts from an earlier run's
weights instead of from scratch.
A fraction of the real photos is held out, never augmented, and read under
the crop protocol after every epoch; the best epoch on it (with --mnist, on it and on
held-out handwriting together) is kept. Everything goes to --out
(outside git): best.keras, last.keras, log.csv and train.json, which `model.export` reads.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the log

import keras
import numpy as np
from PIL import Image

from model.augment import augmented_input
from model.cli import InputError, run
from model.ctc import build_ctc_model, ctc_loss, load_trunk
from model.data import MAX_DIGITS, Sample
from model.decode import BLANK, CONFIDENT_ACCURACY, confidence_threshold, decode_batch
from model.fitting import SeededBatches, compile_model, crop_inputs, fit, save_record, training_photos
from model.handwriting import Handwriting, font_digits, load_mnist
from model.net import WIDTHS, build_model
from model.preprocess import INPUT_SIZE, protocol_crop, to_input, union_box
from model.pseudo import load_pseudo_labels, pseudo_photos
from model.render import FONT_DIRS, FontNumbers, font_files, usable_fonts
from model.surfaces import background
from model.synth import DigitBank

INPUT_SHAPE = (INPUT_SIZE, INPUT_SIZE, 1)
Source = Callable[[np.random.Generator], tuple[Image.Image, tuple[int, ...], tuple[float, float, float, float]]]


def labels_of(digits: tuple[int, ...]) -> tuple[int, np.ndarray]:
    sequence = np.full(MAX_DIGITS, BLANK, dtype=np.int32)
    sequence[: len(digits)] = digits
    return len(digits), sequence


class Batches(SeededBatches):
    """Each example comes from one source, picked with the source's share: a source draws a
    picture, its digits and the digits' union box; augmentation then jitters a crop around it.
    """

    def __init__(self, sources: list[tuple[float, Source]], batch: int, steps: int, seed: int, augment: bool = True,
                 low_res: float = 0.0, teacher=None, teacher_weight: float = 0.5, ctc: bool = False, workers: int = 1):
        super().__init__(batch, steps, seed, workers)
        self.ctc = ctc
        shares = np.array([share for share, _ in sources], dtype=np.float64)
        self.shares, self.sources = shares / shares.sum(), [source for _, source in sources]
        self.augment, self.low_res = augment, low_res
        self.teacher, self.teacher_weight = teacher, teacher_weight

    def __getitem__(self, index: int):
        rng = self.rng(index)
        x = np.empty((self.batch, *INPUT_SHAPE), np.float32)
        length = np.empty(self.batch, np.int32)
        digits = np.empty((self.batch, MAX_DIGITS), np.int32)
        for i in range(self.batch):
            image, number, box = self.sources[rng.choice(len(self.sources), p=self.shares)](rng)
            x[i] = (augmented_input(image, box, rng, self.low_res) if self.augment
                    else to_input(protocol_crop(image, [box])))
            length[i], digits[i] = labels_of(number)
        if self.ctc:  # model/ctc.py learns from the digit string alone
            return x, {"columns": digits}
        if self.teacher is None:
            return x, {"length": length, "digits": digits}
        return x, self.taught(x, length, digits)

    def taught(self, x: np.ndarray, length: np.ndarray, digits: np.ndarray) -> dict[str, np.ndarray]:
        """Distillation (Hinton et al. 2015): targets part label, part a trained reader's probabilities,
        which say how alike a 1 and a 7 look where a label only says which one it is."""
        outputs = [self.teacher.run(x[i:i + 1])[0] for i in range(len(x))]
        w = self.teacher_weight
        return {"length": (1 - w) * np.eye(MAX_DIGITS + 1, dtype=np.float32)[length]
                + w * np.concatenate([out["length"] for out in outputs]),
                "digits": (1 - w) * np.eye(BLANK + 1, dtype=np.float32)[digits]
                + w * np.concatenate([out["digits"] for out in outputs])}


def real_photos(samples: list[Sample], images: dict) -> Source:
    def draw(rng):
        sample = samples[int(rng.integers(len(samples)))]
        return images[sample.path], sample.digits, union_box(list(sample.boxes))
    return draw


def digit_free(walls: list[Image.Image]) -> Source:
    """Regions with no digit (real walls beside training numbers, textures), labelled as no number:
    the localiser sometimes boxes a fence or a stain, and the reader is the one to say "none"."""
    def draw(rng):
        size = (int(rng.integers(24, 240)), int(rng.integers(24, 180)))
        image = background(rng, size, walls)
        width, height = rng.uniform(0.3, 0.9) * size[0], rng.uniform(0.3, 0.9) * size[1]
        return image, (), (rng.uniform(0, size[0] - width), rng.uniform(0, size[1] - height), width, height)
    return draw


def composed(generator) -> Source:
    """A generator's compose(rng) -> (image, digits, digit boxes) as a source."""
    def draw(rng):
        image, digits, boxes = generator.compose(rng)
        return image, digits, union_box(list(boxes))
    return draw


class NumberAccuracy(keras.callbacks.Callback):
    """Whole-number accuracy on the held-out photos, logged as val_number_acc for checkpointing.

    With held-out handwriting (MNIST val digits, cut around their boxes as the crop protocol cuts
    a photo) it also logs val_handwriting_acc, and val_score, the mean of the two: the product
    serves photos and canvas drawings, so the epoch kept is the one best at both.
    It also keeps the readings of the best epoch (the one ModelCheckpoint saves: strictly
    better than any before), so the confidence threshold needs no second pass over the data.
    """

    def __init__(self, x: np.ndarray, numbers: list[str], drawings: tuple[np.ndarray, list[str]] | None = None,
                 monitor: str = "auto"):
        super().__init__()
        self.x, self.numbers, self.drawings = x, numbers, drawings
        if monitor == "auto":
            monitor = "val_score" if drawings else "val_number_acc"
        if monitor != "val_number_acc" and not drawings:
            raise InputError(f"monitoring {monitor} needs held-out handwriting: give --mnist")
        # The confidence threshold is set on the pictures this reader is for: the drawings
        # for a drawing reader, the photos otherwise.
        self.monitor, self.threshold_on = monitor, drawings[1] if monitor == "val_handwriting_acc" else numbers
        self.best, self.best_logs, self.best_readings = -1.0, {}, []

    def accuracy(self, x: np.ndarray, numbers: list[str]) -> tuple[float, list]:
        out = self.model.predict(x, batch_size=256, verbose=0)
        readings = decode_batch(out["length"], out["digits"])
        return float(np.mean([r == t for (r, _), t in zip(readings, numbers)])), readings

    def on_epoch_end(self, epoch, logs=None):
        logs["val_number_acc"], readings = self.accuracy(self.x, self.numbers)
        if self.drawings:
            logs["val_handwriting_acc"], drawn = self.accuracy(*self.drawings)
            logs["val_score"] = (logs["val_number_acc"] + logs["val_handwriting_acc"]) / 2
            if self.monitor == "val_handwriting_acc":
                readings = drawn
        if logs[self.monitor] > self.best:
            self.best, self.best_readings = logs[self.monitor], readings
            self.best_logs = {k: v for k, v in logs.items() if k.startswith("val_")}
        print(" - " + "  ".join(f"{k}: {v:.4f}" for k, v in logs.items() if k.startswith("val_")))

    def threshold(self) -> float:
        """The confidence above which the best epoch reads CONFIDENT_ACCURACY of validation numbers right."""
        confidences = np.array([c for _, c in self.best_readings])
        correct = np.array([r == t for (r, _), t in zip(self.best_readings, self.threshold_on)])
        return confidence_threshold(confidences, correct, CONFIDENT_ACCURACY)


def held_out_drawings(mnist: str, count: int = 500, seed: int = 50_000) -> tuple[np.ndarray, list[str]] | None:
    """Numbers drawn from the MNIST val split (never trained on), as reader inputs and their truths."""
    writer = Handwriting(*load_mnist(mnist, "val"))
    if not len(writer.labels):
        return None
    rng, x, numbers = np.random.default_rng(seed), [], []
    for _ in range(count):
        canvas, digits, boxes = writer.compose(rng)
        x.append(to_input(protocol_crop(canvas, boxes)))
        numbers.append("".join(map(str, digits)))
    return np.stack(x), numbers


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
    font_fraction: float = 0.0  # share of numbers rendered from fonts
    blank_fraction: float = 0.0  # share of digit-free regions, read as no number
    fonts: str = ",".join(FONT_DIRS)  # comma-separated folders searched for font files
    mnist: str | None = None  # MNIST folder: adds handwritten numbers (MNIST train less its last 10,000)
    handwriting_fraction: float = 0.1
    font_digit_share: float = 0.0  # share of the handwritten digits drawn from font glyphs instead of MNIST
    flag_ones: float = 0.0  # share of handwritten 1s given a flag (model/handwriting.py: with_flag)
    flag_reach: float = 0.35  # the longest flag, as a share of its stick's length (the shortest: 0.15)
    repeats: float = 0.0  # share of handwritten numbers of one digit repeated, half of them 1s
    pseudo: str | None = None  # pseudo-labels from model.pseudo: adds unlabelled photos
    pseudo_fraction: float = 0.2
    widths: tuple[int, ...] = WIDTHS
    dense: int = 256
    dropout: float = 0.3  # before and after the dense layer
    weight_decay: float = 1e-4  # AdamW's, decoupled: each step shrinks the weights by lr x this
    seed: int = 1234  # initialisation and batches
    val_seed: int = 1234  # which photos are held out: the same for every run, whatever its --seed
    init: str | None = None  # a .keras checkpoint of an earlier run to start from (same widths and dense)
    average_from: int = 0  # keep the mean weights of this epoch to the last (the rate held after warm-up); 0: the best epoch
    augment: bool = True  # false: every example is the crop protocol's cut, undamaged (to measure what augmenting adds)
    # Share of augmented examples seen at a low resolution (model/augment.py: lower_resolution):
    # numbers a few pixels tall are the ones the reader misses most on validation.
    low_res: float = 0.0
    # A reader (.tflite) to learn from as well as from the labels (distillation): each target is
    # teacher_weight its probabilities and the rest the label, e.g. one network taught by two averaged.
    teacher: str | None = None
    teacher_weight: float = 0.5
    # The epoch kept: best on val_number_acc (photos), val_handwriting_acc (drawings: the canvas
    # reader) or val_score (their mean); auto is val_score with --mnist, else val_number_acc.
    monitor: str = "auto"
    # positions: model/net.py (a classifier per position); ctc: model/ctc.py (one shared by all)
    sequence_head: str = "positions"
    # A model/net.py reader's checkpoint whose conv layers start a ctc reader
    init_trunk: str | None = None
    # Processes drawing batches. On this 2-core CPU the network is the bottleneck (1); a GPU
    # trains faster than one process draws, so give it the machine's cores there.
    workers: int = 1

    CHOICES: ClassVar[dict] = {"monitor": ("auto", "val_number_acc", "val_handwriting_acc", "val_score"),
                               "sequence_head": ("positions", "ctc")}


def sources_for(config: Config, train_samples: list[Sample], images: dict) -> tuple[list, dict]:
    """The training mix: each optional source takes its share, real photos take the rest."""
    bank = DigitBank(train_samples, images)
    mix = [(config.synth_fraction, composed(bank))]
    counts = {"digit_crops": sum(map(len, bank.crops))}
    if config.font_fraction:
        fonts = usable_fonts(font_files(config.fonts.split(",")))
        mix.append((config.font_fraction, composed(FontNumbers(fonts, bank.backgrounds))))
        counts["usable_fonts"] = len(fonts)
    if config.blank_fraction:
        mix.append((config.blank_fraction, digit_free(bank.backgrounds)))
    if config.mnist:
        strokes, labels = load_mnist(config.mnist, "train")
        if config.font_digit_share:
            glyphs, digits = font_digits(usable_fonts(font_files(config.fonts.split(","))))
            # Repeated to make up their share: a few thousand glyphs beside 50,000 MNIST digits.
            copies = max(1, round(config.font_digit_share * len(labels) / ((1 - config.font_digit_share) * len(digits))))
            strokes = np.concatenate([strokes, np.tile(glyphs, (copies, 1, 1))])
            labels = np.concatenate([labels, np.tile(digits, copies)])
            counts["font_digits"] = len(digits)
        mix.append((config.handwriting_fraction,
                    composed(Handwriting(strokes, labels, config.flag_ones, config.repeats, config.flag_reach))))
    if config.pseudo:
        photos = load_pseudo_labels(config.pseudo)
        if photos:  # an early model may be confident about none of them
            mix.append((config.pseudo_fraction, pseudo_photos(photos)))
        counts["pseudo_labelled_photos"] = len(photos)
    rest = 1 - sum(share for share, _ in mix)
    if rest < 0:
        raise InputError(f"the shares of the optional sources add up to {1 - rest:.2f}, more than 1")
    mix.insert(0, (rest, real_photos(train_samples, images)))
    return mix, counts


def train(config: Config, verbose: int = 1) -> dict:
    # Before the photos, fonts and MNIST load: a wrong flag should fail at once.
    if config.sequence_head not in Config.CHOICES["sequence_head"] or (config.sequence_head == "ctc" and config.teacher):
        raise InputError(f"--sequence-head {config.sequence_head}: positions, or ctc without a teacher")
    if config.teacher and config.workers > 1:  # the teacher's LiteRT interpreter was never tried in forked workers
        raise InputError("--teacher reads every example in one interpreter: use --workers 1")
    if not 0 <= config.font_digit_share < 1:  # a share of 1 leaves no MNIST digit to make up with glyphs
        raise InputError(f"--font-digit-share {config.font_digit_share}: from 0 up to, not including, 1")
    for flag, share in (("flag-ones", config.flag_ones), ("repeats", config.repeats)):
        if not 0 <= share <= 1:
            raise InputError(f"--{flag} {share}: a share, from 0 to 1")
    if not 0.15 <= config.flag_reach <= 1:
        raise InputError(f"--flag-reach {config.flag_reach}: a share of the stick's length, from 0.15 to 1")
    if config.init_trunk and config.sequence_head != "ctc":
        raise InputError("--init-trunk starts a ctc reader's conv layers: give --sequence-head ctc too")
    for flag, path in (("init", config.init), ("init-trunk", config.init_trunk), ("teacher", config.teacher),
                       ("pseudo", config.pseudo)):
        if path and not Path(path).is_file():
            raise InputError(f"--{flag} {path}: no such file")
    keras.utils.set_random_seed(config.seed)
    folder, train_samples, val_samples, images = training_photos(config.data, config.val_fraction, config.val_seed)
    mix, counts = sources_for(config, train_samples, images)
    teacher = None
    if config.teacher:
        from model.runtime import Reader  # LiteRT, which a GPU machine that only trains need not have

        teacher = Reader(config.teacher)
    batches = Batches(mix, config.batch, config.steps, config.seed, config.augment, config.low_res, teacher,
                      config.teacher_weight, ctc=config.sequence_head == "ctc", workers=config.workers)
    check = None
    if val_samples:
        check = NumberAccuracy(crop_inputs(val_samples, images), [s.number for s in val_samples],
                               held_out_drawings(config.mnist) if config.mnist else None, config.monitor)

    if config.sequence_head == "ctc":
        model = build_ctc_model(tuple(config.widths), config.dense, config.dropout)
        if config.init_trunk:
            counts["trunk_layers_copied"] = load_trunk(model, config.init_trunk)
        losses = {"columns": ctc_loss}
    else:
        model = build_model(tuple(config.widths), config.dense, config.dropout)
        loss = "categorical_crossentropy" if teacher else "sparse_categorical_crossentropy"  # a teacher's targets are distributions
        losses = {"length": loss, "digits": loss}
    if config.init:
        model.load_weights(config.init)
    compile_model(model, config, losses)
    record = fit(model, batches, config, dict(data=str(folder), train_images=len(train_samples),
                                              val_images=len(val_samples), params=model.count_params(), **counts), check,
                 check.monitor if check else "val_number_acc", verbose)
    if check:  # the kept epoch's figures, whichever one chose it
        record.update({f"best_{k}": v for k, v in check.best_logs.items()}, confidence_threshold=check.threshold())
    else:
        record["confidence_threshold"] = None
    return save_record(config, record)


if __name__ == "__main__":
    import sys

    if any(arg == "--recipe" or arg.startswith("--recipe=") for arg in sys.argv):  # every stage of the bundled model (model/recipe.py)
        from model import recipe

        recipe.main()
    else:
        run(Config, train, __doc__)
