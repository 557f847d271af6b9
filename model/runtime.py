"""Runs the frozen .tflite models with the LiteRT runtime: the localiser and the readers.

This is the only place the networks run, for the web app and for evaluation alike. It imports
ai-edge-litert, numpy and Pillow, never TensorFlow: a worker with all three models holds about
91 MB under load (bench/load.py; TensorFlow alone would take about 570 MB).
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
from model.heatmap import decode as decode_heat
from model.heatmap import locator_input
from model.preprocess import Box, to_input

DEFAULT_MODEL = Path(__file__).with_name("svhn.tflite")
DEFAULT_LOCATOR = Path(__file__).with_name("locator.tflite")
DEFAULT_DRAWING = Path(__file__).with_name("drawing.tflite")  # the reader for the pad's drawings


class LiteModel:
    """One network's interpreter, loaded once with its card (the .json beside it); a worker holds one
    per network (reader, localiser, drawing reader), shared by its threads.

    A lock, because an interpreter runs one call at a time; a warm-up call at load, so the
    first visitor pays nothing extra.
    """

    def __init__(self, model_path: str | Path, num_threads: int = 1):
        self.path = Path(model_path)
        if not self.path.is_file():  # LiteRT's own message ("Could not open") names neither cause nor file kind
            raise FileNotFoundError(f"{self.path}: no such model file")
        card = self.path.with_suffix(".json")
        self.card = json.loads(card.read_text()) if card.exists() else {}
        self.name = self.card.get("name", self.path.stem)
        interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
        self._run = interpreter.get_signature_runner()
        self._input = next(iter(self._run.get_input_details()))
        self._lock = threading.Lock()
        self.input_shape = tuple(self._run.get_input_details()[self._input]["shape"][1:])
        self.run(np.zeros((1, *self.input_shape), np.float32))

    def run(self, batch: np.ndarray) -> tuple[dict[str, np.ndarray], float]:
        """Preprocessed inputs (N, *input_shape) -> the signature's outputs by name, and the model's ms."""
        with self._lock:
            started = time.perf_counter()
            out = self._run(**{self._input: np.ascontiguousarray(batch, dtype=np.float32)})
            elapsed = (time.perf_counter() - started) * 1000
        return out, elapsed


@dataclass(frozen=True)
class Reading:
    number: str  # "" when the model reads no digit
    confidence: float  # probability of this exact reading, 0-1
    confident: bool  # confidence at or above the model's threshold (98% right on validation)
    length_probs: list[float]  # P(number has k digits), k = 0..5
    digit_probs: list[list[float]]  # per position, P(digit 0-9, or 10 = no digit there)
    model_ms: float


class Reader(LiteModel):
    """The sequence network: a picture cropped around a number -> the number."""

    def __init__(self, model_path: str | Path = DEFAULT_MODEL, num_threads: int = 1):
        super().__init__(model_path, num_threads)
        # Without a threshold calibrated on validation, no reading is called confident.
        self.threshold = float(self.card.get("confidence_threshold") or 1.0)

    def read(self, image: Image.Image) -> Reading:
        """A decoded image, cropped to the number as well as the caller can -> the number read."""
        out, elapsed = self.run(to_input(image)[None])
        length, digits = out["length"][0], out["digits"][0]
        number, confidence = decode(length, digits)
        return Reading(number, confidence, confidence >= self.threshold, length.tolist(), digits.tolist(), elapsed)


class Locator(LiteModel):
    """The localiser: a whole picture -> boxes where a house number may be, with scores."""

    def __init__(self, model_path: str | Path = DEFAULT_LOCATOR, num_threads: int = 1):
        super().__init__(model_path, num_threads)
        # The score above which a box counts as a number: chosen on validation pictures without digits.
        self.threshold = float(self.card.get("found_threshold") or 0.5)

    def find(self, image: Image.Image, limit: int = 3) -> tuple[list[tuple[float, Box]], float]:
        """-> [(score, box in the image's pixels)], best first, and the model's ms."""
        x, scale = locator_input(image)
        out, elapsed = self.run(x[None])
        found = decode_heat(next(iter(out.values()))[0], scale, limit=limit)
        # The letterbox pads the picture to a square; a centre in the padding is not in the picture.
        inside = [(score, box) for score, box in found
                  if 0 <= box[0] + box[2] / 2 < image.width and 0 <= box[1] + box[3] / 2 < image.height]
        return inside, elapsed
