"""Train the localiser (model/locator_net.py) that finds house numbers in whole pictures.

    python -m model.train_locator --data data/svhn --mnist data/mnist --out runs/locator

It holds out the same validation photos as `model.train` (same fraction and val_seed), so neither
network ever sees them. After every epoch it looks for the number in those photos as they are
and in scenes built around them, and in pictures without digits; the best epoch is the one
that finds the most numbers at the score threshold that 97.5% of the digit-free pictures stay
under. That threshold becomes the "found" threshold of the model card.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np
from PIL import Image

from model.augment import damage
from model.cli import run
from model.fitting import SeededBatches, compile_model, fit, save_record, training_photos
from model.handwriting import Handwriting, load_mnist
from model.heatmap import CHANNELS, FALSE_ALARMS, GRID, LOCATOR_SIZE, decode, encode, iou, letterbox, locator_input
from model.locator_net import HEAD, WIDTHS, build_locator, locator_loss
from model.preprocess import normalise, union_box
from model.pseudo import load_pseudo_labels, pseudo_photos
from model.render import FONT_DIRS, FontNumbers, font_files, usable_fonts
from model.scenes import Lettering, Pictures, negatives_of, scene_of
from model.synth import walls_of

HIT_IOU = 0.5  # a found box is right when it overlaps the true number box this much


class PictureBatches(SeededBatches):
    """Batches of pictures (model/scenes.py), letterboxed, photometrically damaged, with heat-map targets."""

    def __init__(self, pictures: Pictures, batch: int, steps: int, seed: int, workers: int = 1):
        super().__init__(batch, steps, seed, workers)
        self.pictures = pictures

    def __getitem__(self, index: int):
        rng = self.rng(index)
        x = np.empty((self.batch, LOCATOR_SIZE, LOCATOR_SIZE, 1), np.float32)
        y = np.empty((self.batch, GRID, GRID, CHANNELS), np.float32)
        for i in range(self.batch):
            picture, boxes = self.pictures.draw(rng)
            square, scale = letterbox(picture)
            x[i] = normalise(damage(square, rng))
            y[i] = encode([tuple(v * scale for v in box) for box in boxes])
        return x, y


def found_threshold(negative_scores: np.ndarray) -> float:
    return float(np.quantile(negative_scores, 1 - FALSE_ALARMS)) if len(negative_scores) else 0.5


class LocatorCheck(keras.callbacks.Callback):
    """Logs val_found: the share of validation numbers found (top box right, score above threshold)."""

    def __init__(self, positives: list[tuple[Image.Image, tuple]], negatives: list[Image.Image]):
        super().__init__()
        inputs = [locator_input(p) for p, _ in positives] + [locator_input(n) for n in negatives]
        self.x = np.stack([x for x, _ in inputs])
        self.scales = [s for _, s in inputs]
        self.truths, self.n_pos = [box for _, box in positives], len(positives)
        self.best, self.best_threshold = -1.0, None

    def on_epoch_end(self, epoch, logs=None):
        out = self.model.predict(self.x, batch_size=64, verbose=0)
        tops = [decode(o, s, min_score=0.0, limit=1) for o, s in zip(out, self.scales)]
        scores = np.array([t[0][0] if t else 0.0 for t in tops])
        threshold = found_threshold(scores[self.n_pos:])
        hits = [bool(t) and iou(t[0][1], truth) >= HIT_IOU for t, truth in zip(tops, self.truths)]
        logs["val_hit"] = float(np.mean(hits))
        logs["val_found"] = float(np.mean([h and s >= threshold for h, s in zip(hits, scores)]))
        logs["val_threshold"] = threshold
        if logs["val_found"] > self.best:
            self.best, self.best_threshold = logs["val_found"], threshold
        print(f" - val_hit {logs['val_hit']:.4f} val_found {logs['val_found']:.4f} threshold {threshold:.3f}")


@dataclass
class Config:
    data: str  # labelled SVHN folder, or a root with train/
    out: str = "runs/locator"
    mnist: str | None = None  # MNIST folder: canvas drawings (train split only)
    epochs: int = 40  # the bundled localiser (model/locator.json); its hit rate was still rising at 40
    steps: int = 200
    batch: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.1  # the same held-out photos as model.train with the same fraction and val_seed
    widths: tuple[int, ...] = WIDTHS
    head: int = HEAD  # channels of the upward path and the heads
    start: str | None = None  # a .keras checkpoint to go on training from (widths and head then come from it)
    average_from: int = 0  # keep the mean weights of this epoch to the last (the rate held after warm-up); 0: the best epoch
    letters: float = 0.0  # share of the negatives, and of the patches laid into scenes, that are signs of letters
    fonts: str = ",".join(FONT_DIRS)  # comma-separated folders searched for font files (with --letters)
    small_scenes: float = 0.0  # share of scenes 4-12 times their content's size (the rest 1.3-4 times)
    pseudo: str | None = None  # model.pseudo's file: unlabelled photos a reader reads confidently, the number filling each
    pseudo_fraction: float = 0.0  # share of the scenes whose content is one of those photos
    workers: int = 1  # processes drawing batches (model.train's --workers)
    seed: int = 1234  # initialisation and batches
    val_seed: int = 1234  # which photos are held out (and the scenes built around them)


def validation_pictures(val_samples, images, seed: int):
    """The held-out photos as they are, the same photos in 3x scenes, and as many digit-free pictures."""
    rng = np.random.default_rng(seed)
    walls = [wall for s in val_samples for wall in walls_of(s, images[s.path])]
    positives = [(images[s.path], union_box(list(s.boxes))) for s in val_samples]
    for s in val_samples:
        scene, boxes = scene_of(images[s.path], [union_box(list(s.boxes))], rng, walls)
        positives.append((scene, boxes[0]))
    return positives, negatives_of(val_samples, images, rng, len(val_samples))


def train(config: Config, verbose: int = 1) -> dict:
    keras.utils.set_random_seed(config.seed)
    folder, train_samples, val_samples, images = training_photos(config.data, config.val_fraction, config.val_seed)
    writer = Handwriting(*load_mnist(config.mnist, "train")) if config.mnist else None
    unlabelled = pseudo_photos(load_pseudo_labels(config.pseudo)) if config.pseudo else None
    pictures = Pictures(train_samples, images, writer, small_scenes=config.small_scenes,
                        unlabelled=unlabelled, unlabelled_share=config.pseudo_fraction)
    if config.letters:  # signs on the same real walls as the numbers
        signs = FontNumbers(usable_fonts(font_files(config.fonts.split(","))), pictures.bank.backgrounds)
        pictures.lettering = Lettering(signs.lettering, config.letters)
    batches = PictureBatches(pictures, config.batch, config.steps, config.seed, config.workers)
    check = LocatorCheck(*validation_pictures(val_samples, images, config.val_seed)) if val_samples else None

    model = keras.models.load_model(config.start, compile=False) if config.start else build_locator(tuple(config.widths), config.head)
    compile_model(model, config, locator_loss)
    record = fit(model, batches, config, dict(data=str(folder), train_images=len(train_samples), val_images=len(val_samples),
                                              params=model.count_params()), check, "val_found", verbose)
    record["found_threshold"] = check.best_threshold if check else None
    return save_record(config, record)


if __name__ == "__main__":
    run(Config, train, __doc__)
