"""Set the localiser's "found" threshold through the whole pipeline, on validation pictures only.

    python -m model.calibrate --val-of runs/locator [--locator model/locator.tflite]

The threshold that model.train_locator records comes from the localiser's first look alone;
serving looks twice (model/pipeline.py) and reads what it finds. This runs the product's
pipeline on the pictures without digits built from the run's held-out photos (never test
photos: every stretch of wall beside their numbers once, and as many textures) and writes, into
the localiser's card, the score that FALSE_ALARMS of them may reach.

With that threshold in place it then sets the one behind the API's "confident": the lowest
confidence above which the pipeline's answers on the held-out photos (crop, whole and scene, as
model.evaluate builds them) are CONFIDENT_ACCURACY right. The reader's own threshold, set on clean
crops, says less about an answer read from a box a little off or a small number in a scene.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from model.cli import said_plainly
from model.data import Sample
from model.decode import CONFIDENT_ACCURACY, confidence_threshold
from model.evaluate import SEED, decoded, pictures, validation_samples
from model.heatmap import FALSE_ALARMS
from model.pipeline import Pipeline
from model.runtime import DEFAULT_LOCATOR, DEFAULT_MODEL
from model.scenes import negatives_of

# The pictures a visitor sends: cut close, as taken, or the number small in a wide view.
ANSWER_PROTOCOLS = ("crop", "whole", "scene")


def negative_scores(pipeline: Pipeline, samples: list[Sample]) -> np.ndarray:
    """The pipeline's score for each digit-free picture made from the photos; 0 where it reads no digit.

    Every wall once (200 held-out photos have about 350 stretches of wall at least 24 pixels
    across), and as many textures: the 2.5% tail is then some 17 pictures, each a different one.
    """
    grey = {s.path: Image.open(s.path).convert("L") for s in samples}
    scores = []
    for picture in negatives_of(samples, grey, np.random.default_rng(SEED)):
        answer = pipeline.read(decoded(picture.convert("RGB")))
        scores.append(answer.best.score if answer.best and answer.best.reading.number else 0.0)
    return np.array(scores)


def calibrate(pipeline: Pipeline, run: str) -> float:
    return float(np.quantile(negative_scores(pipeline, validation_samples(run)), 1 - FALSE_ALARMS))


def answer_threshold(pipeline: Pipeline, samples: list[Sample]) -> float:
    """The confidence above which the pipeline's found answers on the photos are CONFIDENT_ACCURACY right."""
    confidences, right = [], []
    for protocol in ANSWER_PROTOCOLS:
        for _, picture, truth in pictures(samples, protocol):
            answer = pipeline.read(decoded(picture))
            if answer.found:
                confidences.append(answer.best.reading.confidence)
                right.append(answer.number == truth)
    return confidence_threshold(np.array(confidences), np.array(right), CONFIDENT_ACCURACY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--val-of", required=True, metavar="RUN", help="the training run whose held-out photos to use")
    parser.add_argument("--locator", default=str(DEFAULT_LOCATOR))
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="the reader")
    args = parser.parse_args()
    pipeline = Pipeline(args.model, args.locator)
    threshold = calibrate(pipeline, args.val_of)
    pipeline.locator.threshold = threshold  # the answers below are the ones served with it
    confident = answer_threshold(pipeline, validation_samples(args.val_of))
    card_path = Path(args.locator).with_suffix(".json")
    card = json.loads(card_path.read_text())
    card["found_threshold"] = threshold
    card["found_threshold_chosen"] = (f"through model/pipeline.py on the pictures without digits built from the "
                                      f"held-out photos of {args.val_of} (each stretch of wall once, as many textures): "
                                      f"{1 - FALSE_ALARMS:.1%} of them score below it")
    card["confident_threshold"], card["confident_threshold_reader"] = confident, pipeline.reader.name
    card["confident_threshold_chosen"] = (f"the pipeline's answers on the held-out photos of {args.val_of} under the "
                                          f"{', '.join(ANSWER_PROTOCOLS)} protocols: those at or above it are "
                                          f"{CONFIDENT_ACCURACY:.0%} right")
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    print(f"found threshold {threshold:.3f} and confident threshold {confident:.3f} written to {card_path}")


if __name__ == "__main__":
    with said_plainly():  # a wrong folder or run is one line, not a traceback
        main()
