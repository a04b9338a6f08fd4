"""FER2013 exploration: `python -m training.explore ../shared/datasets/fer2013 --out docs/exploration`.

Writes class-distribution, sample-grid, mean-face and intensity-histogram PNGs and a short markdown summary.
Accepts the folder layout root (train/ and val/) or Kaggle's fer2013.csv.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fer.labels import LABELS  # noqa: E402
from training.data import Dataset, load_csv, load_folder  # noqa: E402

SAMPLES_PER_CLASS = 8


def load_all(source: Path) -> dict[str, Dataset]:
    if source.is_file():
        return load_csv(source)
    splits = {p.name: load_folder(p) for p in sorted(source.iterdir()) if p.is_dir()}
    if not splits:
        raise SystemExit(f"{source}: no split folders (expected train/, val/ ...)")
    return splits


def class_distribution_png(splits: dict[str, Dataset], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(splits)
    for i, (name, data) in enumerate(splits.items()):
        counts = list(data.class_counts().values())
        ax.bar(np.arange(len(LABELS)) + i * width, counts, width, label=f"{name} ({len(data)})")
    ax.set_xticks(np.arange(len(LABELS)) + width * (len(splits) - 1) / 2, LABELS)
    ax.set_ylabel("images")
    ax.set_title("FER2013 class distribution")
    ax.legend()
    _save(fig, path)


def sample_grid_png(data: Dataset, path: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(len(LABELS), SAMPLES_PER_CLASS, figsize=(SAMPLES_PER_CLASS * 1.1, len(LABELS) * 1.2))
    for row, label in enumerate(LABELS):
        indices = np.flatnonzero(data.labels == row)
        chosen = rng.choice(indices, size=min(SAMPLES_PER_CLASS, len(indices)), replace=False) if len(indices) else []
        for col in range(SAMPLES_PER_CLASS):
            ax = axes[row, col]
            ax.axis("off")
            if col < len(chosen):
                ax.imshow(data.images[chosen[col]], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        axes[row, 0].set_title(label, fontsize=8, loc="left")
    _save(fig, path)


def mean_faces_png(data: Dataset, path: Path) -> None:
    fig, axes = plt.subplots(1, len(LABELS), figsize=(len(LABELS) * 1.5, 1.9))
    for i, label in enumerate(LABELS):
        members = data.images[data.labels == i]
        axes[i].axis("off")
        axes[i].set_title(label, fontsize=9)
        if len(members):
            axes[i].imshow(members.mean(axis=0), cmap="gray", vmin=0, vmax=255)
    _save(fig, path)


def intensity_histogram_png(data: Dataset, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(data.images.reshape(-1), bins=64, range=(0, 255), color="gray")
    ax.set_xlabel("pixel intensity")
    ax.set_ylabel("pixels")
    ax.set_title("Intensity histogram (all training pixels)")
    _save(fig, path)


def summary_markdown(splits: dict[str, Dataset], primary: str) -> str:
    lines = ["# FER2013 exploration", "", "| class | " + " | ".join(splits) + " |", "|---|" + "---|" * len(splits)]
    for label in LABELS:
        lines.append(f"| {label} | " + " | ".join(str(d.class_counts()[label]) for d in splits.values()) + " |")
    lines.append("| **total** | " + " | ".join(str(len(d)) for d in splits.values()) + " |")
    data = splits[primary]
    counts = data.class_counts()
    rarest, commonest = min(counts, key=counts.get), max(counts, key=counts.get)
    per_image_mean = data.images.reshape(len(data), -1).mean(axis=1)
    lines += [
        "",
        f"- `{primary}`: {len(data)} images of 48x48 grayscale; mean intensity {data.images.mean():.1f}, "
        f"std {data.images.std():.1f}.",
        f"- Imbalance: `{commonest}` has {counts[commonest]} images, `{rarest}` only {counts[rarest]} "
        f"({counts[commonest] / max(counts[rarest], 1):.1f}x fewer): accuracy alone hides how `{rarest}` fares, so macro "
        "recall is reported beside it and training weights classes.",
        f"- {int((per_image_mean < 20).sum())} nearly black and {int((per_image_mean > 235).sum())} nearly white images "
        "(mean intensity < 20 or > 235): FER2013's known blank/corrupt samples, kept (labels are not ours to change).",
        "",
        "![class distribution](class_distribution.png)",
        "![samples](samples.png)",
        "![mean faces](mean_faces.png)",
        "![intensity](intensity_histogram.png)",
    ]
    return "\n".join(lines) + "\n"


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="FER2013 folder root or fer2013.csv")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    splits = load_all(args.source)
    primary = "train" if "train" in splits else next(iter(splits))
    class_distribution_png(splits, args.out / "class_distribution.png")
    sample_grid_png(splits[primary], args.out / "samples.png")
    mean_faces_png(splits[primary], args.out / "mean_faces.png")
    intensity_histogram_png(splits[primary], args.out / "intensity_histogram.png")
    (args.out / "summary.md").write_text(summary_markdown(splits, primary))
    print(f"wrote {args.out}/summary.md and 4 PNGs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
