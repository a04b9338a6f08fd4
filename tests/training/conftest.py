"""A tiny FER2013-shaped dataset, generated per test session in both layouts people have (folders and Kaggle CSV)."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer.labels import LABELS

IMAGES_PER_CLASS = {"train": 6, "val": 3}


def synthetic_face(label_index: int, rng: np.random.Generator) -> np.ndarray:
    """A 48x48 image whose pattern depends on the class, so a model can learn something from it."""
    image = rng.integers(60, 90, size=(48, 48)).astype(np.uint8)
    cv2.circle(image, (24, 24), 20, 150, -1)
    cv2.rectangle(image, (4 + 5 * label_index, 30), (10 + 5 * label_index, 40), 250, -1)
    return image


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> dict[str, Path]:
    """{"folder": root with train/ and val/, "csv": fer2013.csv holding the same images}."""
    root = tmp_path_factory.mktemp("tiny_fer")
    rng = np.random.default_rng(7)
    rows = []
    for split, usage in (("train", "Training"), ("val", "PublicTest")):
        for label_index, label in enumerate(LABELS):
            (root / "folder" / split / label).mkdir(parents=True)
            for i in range(IMAGES_PER_CLASS[split]):
                image = synthetic_face(label_index, rng)
                cv2.imwrite(str(root / "folder" / split / label / f"{usage}_{i:05d}.png"), image)
                rows.append((label_index, " ".join(map(str, image.reshape(-1))), usage))
    csv_path = root / "fer2013.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["emotion", "pixels", "Usage"])
        writer.writerows(rows)
    return {"folder": root / "folder", "csv": csv_path}
