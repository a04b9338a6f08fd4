"""Evaluation figures as PNG files (matplotlib with the non-interactive Agg backend)."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fer.labels import LABELS  # noqa: E402


def confusion_matrix_png(matrix: np.ndarray, path: Path, title: str) -> Path:
    """Row-normalised confusion matrix: each row shows where that true class's images went."""
    rows = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, rows, out=np.zeros(matrix.shape, dtype=float), where=rows > 0)
    fig, ax = plt.subplots(figsize=(7, 6))
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(LABELS)), LABELS, rotation=45, ha="right")
    ax.set_yticks(range(len(LABELS)), LABELS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(len(LABELS)):
        for j in range(len(LABELS)):
            ax.text(j, i, f"{normalised[i, j]:.2f}", ha="center", va="center",
                    color="white" if normalised[i, j] > 0.5 else "black", fontsize=8)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def training_curves_png(history_csv: Path, out_dir: Path, prefix: str) -> list[Path]:
    """Loss and accuracy per epoch (train and validation) from Keras' CSVLogger file."""
    with history_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return []
    epochs = [int(r["epoch"]) + 1 for r in rows]
    paths = []
    for metric in ("loss", "accuracy"):
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(epochs, [float(r[metric]) for r in rows], label=f"train {metric}")
        ax.plot(epochs, [float(r[f"val_{metric}"]) for r in rows], label=f"val {metric}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(f"{prefix}: {metric}")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = out_dir / f"{prefix}_{metric}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
