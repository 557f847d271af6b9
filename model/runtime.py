"""Runs the frozen .tflite model with the LiteRT runtime: image in, number out.

This is the only place the model runs, for the web app and for evaluation alike. It imports
ai-edge-litert, numpy and Pillow, never TensorFlow: a worker stays around 50 MB.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from PIL import Image

from model.decode import decode
from model.preprocess import INPUT_SIZE, to_input

DEFAULT_MODEL = Path(__file__).with_name("svhn.tflite")


@dataclass(frozen=True)
class Reading:
    number: str  # "" when the model reads no digit
    confidence: float  # probability of this exact reading, 0-1
    confident: bool  # confidence at or above the model's threshold (98% right on validation)
    length_probs: list[float]  # P(number has k digits), k = 0..5
    digit_probs: list[list[float]]  # per position, P(digit 0-9, or 10 = no digit there)
    model_ms: float


class Reader:
    """One interpreter per process, loaded once; a lock because an interpreter runs one call at a time."""

    def __init__(self, model_path: str | Path = DEFAULT_MODEL, num_threads: int = 1):
        self.path = Path(model_path)
        self.card = json.loads(self.path.with_suffix(".json").read_text()) if self.path.with_suffix(".json").exists() else {}
        self.name = self.card.get("name", self.path.stem)
        # Without a threshold calibrated on validation, no reading is called confident.
        self.threshold = float(self.card.get("confidence_threshold") or 1.0)
        interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
        self._run = interpreter.get_signature_runner()
        self._input = next(iter(self._run.get_input_details()))
        self._lock = threading.Lock()
        self.run(np.zeros((1, INPUT_SIZE, INPUT_SIZE, 1), np.float32))  # warm up: the first visitor pays nothing extra

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Preprocessed inputs (N, 64, 64, 1) -> length (N, 6) and digit (N, 5, 11) probabilities, model ms."""
        with self._lock:
            started = time.perf_counter()
            out = self._run(**{self._input: np.ascontiguousarray(batch, dtype=np.float32)})
            elapsed = (time.perf_counter() - started) * 1000
        return out["length"], out["digits"], elapsed

    def read(self, image: Image.Image) -> Reading:
        """A decoded image, cropped to the number as well as the caller can -> the number read."""
        length, digits, elapsed = self.run(to_input(image)[None])
        number, confidence = decode(length[0], digits[0])
        return Reading(number, confidence, confidence >= self.threshold, length[0].tolist(), digits[0].tolist(), elapsed)
