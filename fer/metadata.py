"""The model's sidecar JSON (same stem as the .tflite): input size, normalisation, labels and training metrics.

Preprocessing is driven by this file only, so a new model never needs new code: `input = pixel * scale + offset`,
after histogram equalisation when `normalization.equalize_histogram` is true (exactly as the model was trained).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fer.errors import InvalidModelError, ModelNotFoundError
from fer.labels import LABELS

RETIRED_NORMALIZATION_FIELDS = ("max_laplacian_variance", "blur_sigma")


@dataclass(frozen=True)
class ModelMetadata:
    name: str
    input_size: tuple[int, int]  # (height, width)
    scale: float  # input = pixel * scale + offset, pixel in 0..255
    offset: float
    labels: tuple[str, ...] = LABELS
    metrics: dict[str, Any] = field(default_factory=dict)
    equalize_histogram: bool = False  # cv2.equalizeHist on the resized face before scale/offset

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "input_size": list(self.input_size),
            "normalization": {"scale": self.scale, "offset": self.offset,
                              "equalize_histogram": self.equalize_histogram},
            "labels": list(self.labels),
            "metrics": self.metrics,
        }

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path


def sidecar_path(model_path: str | Path) -> Path:
    return Path(model_path).with_suffix(".json")


def read_metadata(path: str | Path) -> ModelMetadata:
    """Parse a sidecar file; every missing or ill-typed field is an InvalidModelError naming the file and field."""
    path = Path(path)
    if not path.is_file():
        raise ModelNotFoundError(f"{path}: model metadata sidecar not found (expected JSON next to the .tflite, same stem)")
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidModelError(f"{path}: metadata is not valid JSON ({error})") from error
    return parse_metadata(raw, source=str(path))


def parse_metadata(raw: Any, source: str = "metadata") -> ModelMetadata:
    def fail(message: str) -> InvalidModelError:
        return InvalidModelError(f"{source}: {message}")

    if not isinstance(raw, dict):
        raise fail("expected a JSON object")
    size = raw.get("input_size")
    if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(_is_positive_int(v) for v in size)):
        raise fail(f"'input_size' must be [height, width] positive integers, got {size!r}")
    norm = raw.get("normalization")
    if not (isinstance(norm, dict) and _is_number(norm.get("scale")) and _is_number(norm.get("offset"))):
        raise fail(f"'normalization' must be {{'scale': number, 'offset': number}}, got {norm!r}")
    if norm["scale"] == 0:
        raise fail("'normalization.scale' must not be 0")
    equalize = norm.get("equalize_histogram", False)
    if not isinstance(equalize, bool):
        raise fail(f"'normalization.equalize_histogram' must be true or false, got {equalize!r}")
    # Models trained on the old, blurred FER2013 train split asked the runtime to blur sharp faces. That preprocessing
    # is gone; such a model would silently misread every face, so it is refused by name.
    for retired in RETIRED_NORMALIZATION_FIELDS:
        if norm.get(retired):
            raise fail(f"'normalization.{retired}' (blur matching for the old blurred train split) is no longer "
                       "supported: re-export the model with training.export")
    labels = raw.get("labels", list(LABELS))
    if not (isinstance(labels, (list, tuple)) and sorted(labels) == sorted(LABELS)):
        raise fail(f"'labels' must be the 7 classes {list(LABELS)} in some order, got {labels!r}")
    metrics = raw.get("metrics", {})
    if not isinstance(metrics, dict):
        raise fail(f"'metrics' must be an object, got {metrics!r}")
    return ModelMetadata(
        name=str(raw.get("name", "unnamed")),
        input_size=(int(size[0]), int(size[1])),
        scale=float(norm["scale"]),
        offset=float(norm["offset"]),
        labels=tuple(labels),
        metrics=metrics,
        equalize_histogram=equalize,
    )


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
