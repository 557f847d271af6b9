"""Set the localiser's "found" threshold through the whole pipeline, on validation pictures only.

    python -m model.calibrate --val-of runs/locator [--locator model/locator.tflite]

The threshold that model.train_locator records comes from the localiser's first look alone;
serving looks twice (model/pipeline.py) and reads what it finds. This runs the product's
pipeline on the pictures without digits built from the run's held-out photos (never test
photos) and writes, into the localiser's card, the score that FALSE_ALARMS of them may reach.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from model.evaluate import decoded, pictures, validation_samples
from model.pipeline import Pipeline
from model.runtime import DEFAULT_LOCATOR, DEFAULT_MODEL
from model.train_locator import FALSE_ALARMS


def calibrate(pipeline: Pipeline, run: str) -> float:
    scores = []
    for _, picture, _ in pictures(validation_samples(run), "none"):
        answer = pipeline.read(decoded(picture))
        scores.append(answer.best.score if answer.best and answer.best.reading.number else 0.0)
    return float(np.quantile(scores, 1 - FALSE_ALARMS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--val-of", required=True, metavar="RUN", help="the training run whose held-out photos to use")
    parser.add_argument("--locator", default=str(DEFAULT_LOCATOR))
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="the reader")
    args = parser.parse_args()
    threshold = calibrate(Pipeline(args.model, args.locator), args.val_of)
    card_path = Path(args.locator).with_suffix(".json")
    card = json.loads(card_path.read_text())
    card["found_threshold"] = threshold
    card["found_threshold_chosen"] = (f"through model/pipeline.py on the pictures without digits built from the "
                                      f"held-out photos of {args.val_of}: {1 - FALSE_ALARMS:.1%} of them score below it")
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    print(f"found threshold {threshold:.3f} written to {card_path}")


if __name__ == "__main__":
    main()
