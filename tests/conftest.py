"""Shared fixtures: the app on the bundled model, its test client, and real SVHN test photos."""
from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app import DEFAULTS, create_app
from model.data import load_samples

FIXTURES = Path(__file__).parent / "fixtures"


# The defaults, whatever a developer's shell sets (RATE_LIMIT, TRUSTED_PROXIES, ... would change the app).
TEST_CONFIG = {**DEFAULTS, "TESTING": True}


@pytest.fixture(scope="session")
def app():
    return create_app(TEST_CONFIG)


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def test_samples():
    """SVHN test images 1-50 with their labels: a fixed run, not picked for ease."""
    return load_samples(FIXTURES / "svhn_test")


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory):
    """A 10-digit MNIST in idx format (digit d a bar of ink at column 2d). Composing crops each digit to its
    ink, so every digit draws the same bar: tests that check labels against pixels make their own digits."""
    folder = tmp_path_factory.mktemp("mnist")
    images = np.zeros((10, 28, 28), np.uint8)
    for d in range(10):
        images[d, 4:24, 2 * d + 4: 2 * d + 7] = 255
    header = lambda dims: bytes([0, 0, 8, len(dims)]) + b"".join(n.to_bytes(4, "big") for n in dims)  # noqa: E731
    for prefix in ("train", "t10k"):
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(header((10, 28, 28)) + images.tobytes()))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(header((10,)) + bytes(range(10))))
    return folder
