"""The TFLite runtime fallback: ai_edge_litert, then tflite_runtime, then tensorflow.lite, and a clear error if none.

Imports are blocked by putting None in sys.modules (what Python does for a module that failed to import).
tflite-runtime itself cannot be installed next to NumPy 2, so its slot is filled with LiteRT's real Interpreter
under the `tflite_runtime.interpreter` name: that checks the lookup order and that the class is used as such.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest

from fer import EmotionClassifier, RuntimeNotFoundError, find_runtime
from fer import runtime as runtime_module

LITERT_MODULES = ("ai_edge_litert", "ai_edge_litert.interpreter")
TFLITE_RUNTIME_MODULES = ("tflite_runtime", "tflite_runtime.interpreter")


@pytest.fixture(autouse=True)
def fresh_runtime_choice():
    """The choice is cached per process: clear it around each test so blocked imports take effect and don't leak."""
    runtime_module.default_runtime.cache_clear()
    yield
    runtime_module.default_runtime.cache_clear()


def block(monkeypatch: pytest.MonkeyPatch, *module_names: str) -> None:
    for name in module_names:
        monkeypatch.setitem(sys.modules, name, None)


def test_litert_is_preferred() -> None:
    assert find_runtime().name == "ai_edge_litert"


def test_falls_back_to_tflite_runtime(monkeypatch, tiny_model_dir: Path) -> None:
    from ai_edge_litert.interpreter import Interpreter

    module = types.ModuleType("tflite_runtime.interpreter")
    module.Interpreter = Interpreter
    package = types.ModuleType("tflite_runtime")
    package.interpreter = module
    block(monkeypatch, *LITERT_MODULES)
    monkeypatch.setitem(sys.modules, "tflite_runtime", package)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", module)
    assert find_runtime().name == "tflite_runtime"
    classifier = EmotionClassifier.load(tiny_model_dir / "tiny_float.tflite")
    assert classifier.runtime_name == "tflite_runtime"
    assert classifier.predict(np.full((1, 48, 48), 128, np.uint8)).shape == (1, 7)


def test_falls_back_to_tensorflow_lite(monkeypatch, tiny_model_dir: Path) -> None:
    reference = EmotionClassifier.load(tiny_model_dir / "tiny_float.tflite")
    faces = np.stack([np.full((48, 48), v, np.uint8) for v in (20, 128, 230)])
    runtime_module.default_runtime.cache_clear()
    block(monkeypatch, *LITERT_MODULES, *TFLITE_RUNTIME_MODULES)
    classifier = EmotionClassifier.load(tiny_model_dir / "tiny_float.tflite")
    assert classifier.runtime_name == "tensorflow.lite"
    assert "tensorflow.lite" in repr(classifier)
    assert np.allclose(classifier.predict(faces), reference.predict(faces), atol=1e-5)


def test_detector_uses_the_same_fallback(monkeypatch) -> None:
    from fer import BlazeFaceDetector

    block(monkeypatch, *LITERT_MODULES, *TFLITE_RUNTIME_MODULES)
    detector = BlazeFaceDetector()
    assert detector.runtime_name == "tensorflow.lite"
    assert detector.detect(np.zeros((480, 640, 3), np.uint8)) == []


def test_no_runtime_at_all_is_a_clear_error(monkeypatch, tiny_model_dir: Path) -> None:
    block(monkeypatch, *LITERT_MODULES, *TFLITE_RUNTIME_MODULES, "tensorflow")
    with pytest.raises(RuntimeNotFoundError, match="pip install ai-edge-litert") as raised:
        EmotionClassifier.load(tiny_model_dir / "tiny_float.tflite")
    for name in ("ai_edge_litert", "tflite_runtime", "tensorflow.lite"):
        assert name in str(raised.value)
