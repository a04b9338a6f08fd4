"""FER2013 loaders for the two layouts people have: Kaggle's CSV and the `<split>/<class>/*.jpg` folders.

Both return the same thing: a `Dataset` of uint8 images (N, 48, 48) and int labels in `fer.LABELS` order.
Nothing is dropped silently: a malformed row or unreadable file raises `DataError` naming it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer.labels import LABELS

IMAGE_SIZE = 48
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
# Kaggle's `Usage` column names the splits differently from the folder layout.
CSV_USAGE_TO_SPLIT = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}


class DataError(ValueError):
    """A data file or row that cannot be used; the message names it."""


@dataclass(frozen=True)
class Dataset:
    images: np.ndarray  # uint8 (N, 48, 48)
    labels: np.ndarray  # int64 (N,)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(LABELS))
        return {label: int(n) for label, n in zip(LABELS, counts)}


def equalize_histograms(images: np.ndarray) -> np.ndarray:
    """Histogram-equalise each uint8 image (N, H, W); `fer` does the same at run time when the model's metadata asks."""
    return np.stack([cv2.equalizeHist(image) for image in images]) if len(images) else images


def model_inputs(images: np.ndarray, normalization: dict) -> np.ndarray:
    """uint8 faces (N, H, W) -> float32 model inputs (N, H, W, 1), by a run's `normalization` record (config.json and
    sidecar: scale, offset, equalize_histogram), as `fer` does at run time."""
    if normalization.get("equalize_histogram"):
        images = equalize_histograms(images)
    return images[..., None].astype(np.float32) * normalization["scale"] + normalization["offset"]


def load_split(source: str | Path, split: str) -> Dataset:
    """Load one split ("train", "val" or "test") from a FER2013 CSV file or folder root."""
    source = Path(source)
    if not source.exists():
        raise DataError(f"{source}: no such file or directory")
    if source.is_file():
        return load_csv(source)[split]
    return load_folder(source / split)


def load_folder(split_dir: str | Path) -> Dataset:
    """Read `split_dir/<class>/*.jpg` with class folders named as in `fer.LABELS`."""
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise DataError(f"{split_dir}: not a directory (expected <split>/<class>/*.jpg)")
    unknown = sorted(p.name for p in split_dir.iterdir() if p.is_dir() and p.name not in LABELS)
    if unknown:
        raise DataError(f"{split_dir}: unknown class folders {unknown}; expected {list(LABELS)}")
    images: list[np.ndarray] = []
    labels: list[int] = []
    for label_index, label in enumerate(LABELS):
        class_dir = split_dir / label
        if not class_dir.is_dir():
            continue
        for path in sorted(class_dir.iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            images.append(_read_face_image(path))
            labels.append(label_index)
    if not images:
        raise DataError(f"{split_dir}: no images found")
    return Dataset(np.stack(images), np.asarray(labels, dtype=np.int64))


def _read_face_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise DataError(f"{path}: unreadable image")
    if image.shape != (IMAGE_SIZE, IMAGE_SIZE):
        image = cv2.resize(image, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
    return image


def load_csv(csv_path: str | Path) -> dict[str, Dataset]:
    """Read Kaggle's `fer2013.csv` (columns emotion, pixels, Usage) into datasets keyed by split."""
    csv_path = Path(csv_path)
    rows: dict[str, tuple[list[np.ndarray], list[int]]] = {}
    with csv_path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"emotion", "pixels"} - set(reader.fieldnames or [])
        if missing:
            raise DataError(f"{csv_path}: missing columns {sorted(missing)}")
        for line_number, row in enumerate(reader, start=2):
            where = f"{csv_path}:{line_number}"
            try:
                label = int(row["emotion"])
            except (TypeError, ValueError):
                raise DataError(f"{where}: emotion {row['emotion']!r} is not an integer") from None
            if not 0 <= label < len(LABELS):
                raise DataError(f"{where}: emotion {label} outside 0..{len(LABELS) - 1}")
            try:
                pixels = np.array([int(v) for v in (row["pixels"] or "").split()], dtype=np.int64)
            except ValueError:
                raise DataError(f"{where}: pixels are not integers") from None
            if pixels.size != IMAGE_SIZE * IMAGE_SIZE or pixels.min() < 0 or pixels.max() > 255:
                raise DataError(f"{where}: expected {IMAGE_SIZE * IMAGE_SIZE} pixel values in 0..255, got {pixels.size}")
            usage = (row.get("Usage") or "Training").strip()
            split = CSV_USAGE_TO_SPLIT.get(usage)
            if split is None:
                raise DataError(f"{where}: unknown Usage {usage!r}")
            images, labels = rows.setdefault(split, ([], []))
            images.append(pixels.astype(np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE))
            labels.append(label)
    if not rows:
        raise DataError(f"{csv_path}: no rows")
    return {
        split: Dataset(np.stack(images), np.asarray(labels, dtype=np.int64))
        for split, (images, labels) in rows.items()
    }
