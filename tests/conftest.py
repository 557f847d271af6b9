"""Shared fixtures: the app on the bundled model, its test client, and real SVHN test photos."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from app import create_app
from model.data import load_samples

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def app():
    return create_app({"TESTING": True})


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
