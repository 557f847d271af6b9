"""Network outputs -> the number read. numpy only: shared by the runtime, evaluation and training."""
from __future__ import annotations

import numpy as np

BLANK = 10  # digit class for positions past the end of the number
CONFIDENT_ACCURACY = 0.98  # "confident" readings are right this often on validation


def decode(length_probs: np.ndarray, digit_probs: np.ndarray) -> tuple[str, float]:
    """One image's length (L+1,) and digit (L, 11) probabilities -> (number, confidence).

    The length head decides how many digits; each position then takes its most likely
    digit 0-9. The confidence is the probability of that whole reading under the model's
    factorisation (length times each digit), as in Goodfellow et al.
    """
    length = int(np.argmax(length_probs))
    confidence = float(length_probs[length])
    digits = []
    for position in range(length):
        digit = int(np.argmax(digit_probs[position, :BLANK]))
        digits.append(str(digit))
        confidence *= float(digit_probs[position, digit])
    return "".join(digits), confidence


def decode_batch(length_probs: np.ndarray, digit_probs: np.ndarray) -> list[tuple[str, float]]:
    return [decode(l, d) for l, d in zip(length_probs, digit_probs)]


def confidence_threshold(confidences: np.ndarray, correct: np.ndarray, accuracy: float) -> float:
    """The lowest confidence above which readings are still right at least `accuracy` of the time.

    Chosen on validation data; the API then flags readings below it as not confident.
    """
    order = np.argsort(-np.asarray(confidences))
    running = np.cumsum(np.asarray(correct)[order]) / np.arange(1, len(order) + 1)
    ok = np.where(running >= accuracy)[0]
    return float(np.asarray(confidences)[order][ok[-1]]) if len(ok) else 1.0
