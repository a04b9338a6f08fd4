"""Soft targets for distillation: `python -m training.distill --teacher training/reference/edge_vgg_float32.tflite
--out runs/teacher/targets.npy`; several `--teacher` files make an ensemble teacher (their probabilities averaged),
and `--measure-only` prints the teachers' val numbers without writing targets.

The teacher is a finished model read through `fer.EmotionClassifier` (so its own normalisation applies) and averaged
over test-time views: the face as given, shifted two pixels each way, zoomed 0.9x and 1.1x, each also mirrored (14
views). That average is stronger than any single pass (measured here on the shipped edge_vgg's float32 export: val 0.6517
alone, 0.6609 with the mirror, 0.6712 with all 14 views) but 14x too slow to deploy; a student trained towards it
(`training.train --teacher-targets`) learns it in one pass. Because the views include the mirror, the targets are the
same for a face and its mirror, so they stay valid under the training pipeline's random flips.

Writes `<out>` (float32, N x 7, in `load_split(data, "train")` order) and `<out stem>.json` (each teacher with its
sha256 and val numbers, the views, how many faces, the ensemble's val numbers with one pass and with all the views).
Val is only measured, never a target.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from fer.labels import LABELS
from training.data import Dataset, load_split
from training.evaluate import DEFAULT_DATA, Predict, tflite_predictor
from training.metrics import classification_report

View = Callable[[np.ndarray], np.ndarray]  # uint8 (N, 48, 48) -> uint8 (N, 48, 48)


def _affine(images: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    height, width = images.shape[1:3]
    return np.stack([cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)
                     for image in images]) if len(images) else images


def shifted(dx: float, dy: float) -> View:
    return lambda images: _affine(images, np.float32([[1, 0, dx], [0, 1, dy]]))


def zoomed(scale: float) -> View:
    def view(images: np.ndarray) -> np.ndarray:
        height, width = images.shape[1:3]
        return _affine(images, cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), 0, scale))
    return view


def mirrored(view: View) -> View:
    return lambda images: np.ascontiguousarray(view(images)[:, :, ::-1])


BASE_VIEWS: dict[str, View] = {
    "identity": lambda images: images,
    "shift +2x": shifted(2, 0), "shift -2x": shifted(-2, 0), "shift +2y": shifted(0, 2), "shift -2y": shifted(0, -2),
    "zoom 0.9": zoomed(0.9), "zoom 1.1": zoomed(1.1),
}
VIEWS: dict[str, View] = {**BASE_VIEWS, **{f"{name} mirrored": mirrored(view) for name, view in BASE_VIEWS.items()}}


VIEW_SETS: dict[str, dict[str, View]] = {
    "all": VIEWS,
    # The cheapest set that still gives a face and its mirror one target (2 passes instead of 14).
    "mirror": {name: VIEWS[name] for name in ("identity", "identity mirrored")},
}


@dataclass(frozen=True)
class TeacherScore:
    """One teacher's val numbers, alone (one pass) and averaged over the views."""
    teacher: str
    sha256: str
    val_accuracy_single_view: float
    val_macro_recall_single_view: float
    val_accuracy: float
    val_macro_recall: float


@dataclass(frozen=True)
class TeacherTargets:
    teachers: list[str]
    members: list[TeacherScore]
    views: list[str]
    faces: int
    # The ensemble (the mean of the teachers' probabilities), one pass each and averaged over the views: the second is
    # what the student is trained towards.
    val_accuracy_single_view: float
    val_macro_recall_single_view: float
    val_accuracy: float
    val_macro_recall: float


def view_averaged(predict: Predict, images: np.ndarray, views: dict[str, View] = VIEWS) -> np.ndarray:
    """The mean of the teacher's probabilities over every view of each face."""
    return np.mean([predict(view(images)) for view in views.values()], axis=0).astype(np.float32)


def score_teachers(teachers: list[Path], val: Dataset, views: dict[str, View] = VIEWS
                   ) -> tuple[list[TeacherScore], dict[str, float], list[Predict]]:
    """Each teacher's val numbers and the ensemble's (keys as in TeacherTargets), and the teachers' predictors."""
    predictors = [tflite_predictor(teacher) for teacher in teachers]
    single = [predict(val.images) for predict in predictors]
    averaged = [view_averaged(predict, val.images, views) for predict in predictors]
    members = []
    for teacher, one, many in zip(teachers, single, averaged):
        alone, viewed = (classification_report(val.labels, p.argmax(axis=1)) for p in (one, many))
        members.append(TeacherScore(str(teacher), hashlib.sha256(teacher.read_bytes()).hexdigest(), alone.accuracy,
                                    alone.macro_recall, viewed.accuracy, viewed.macro_recall))
    alone = classification_report(val.labels, np.mean(single, axis=0).argmax(axis=1))
    viewed = classification_report(val.labels, np.mean(averaged, axis=0).argmax(axis=1))
    ensemble = {"val_accuracy_single_view": alone.accuracy, "val_macro_recall_single_view": alone.macro_recall,
                "val_accuracy": viewed.accuracy, "val_macro_recall": viewed.macro_recall}
    return members, ensemble, predictors


def write_teacher_targets(teachers: list[Path], data_dir: Path, out: Path, views: dict[str, View] = VIEWS
                          ) -> TeacherTargets:
    """The teachers' mean probabilities (each averaged over `views`) for every train face, in load_split order."""
    members, ensemble, predictors = score_teachers(teachers, load_split(data_dir, "val"), views)
    train: Dataset = load_split(data_dir, "train")
    targets = np.mean([view_averaged(predict, train.images, views) for predict in predictors], axis=0)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, targets.astype(np.float32))
    record = TeacherTargets([str(t) for t in teachers], members, list(views), len(train), **ensemble)
    out.with_suffix(".json").write_text(json.dumps(asdict(record), indent=2))
    return record


def load_teacher_targets(path: Path, train: Dataset) -> np.ndarray:
    """The targets at `path`, checked against the train split they must describe (one row of 7 probabilities each)."""
    targets = np.load(path)
    if targets.ndim != 2 or targets.shape[1] != len(LABELS):
        raise ValueError(f"{path}: expected N x 7 teacher probabilities, got shape {targets.shape}")
    if len(targets) < len(train):
        raise ValueError(f"{path}: {len(targets)} rows of teacher targets for {len(train)} training faces; "
                         "they were written for another train split (rerun training.distill)")
    targets = targets[:len(train)]  # a --limit smoke run uses the first faces, in the same order
    if not np.all(np.isfinite(targets)) or np.any(targets < 0) or not np.allclose(targets.sum(axis=1), 1, atol=1e-3):
        raise ValueError(f"{path}: rows are not probability distributions")
    return targets.astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", type=Path, nargs="+", required=True,
                        help="one .tflite (with its sidecar) or several: an ensemble, their probabilities averaged")
    parser.add_argument("--views", choices=sorted(VIEW_SETS), default="all", help="test-time views per teacher")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--out", type=Path, help="where the .npy of targets goes")
    group.add_argument("--measure-only", action="store_true", help="print the teachers' val numbers, write nothing")
    args = parser.parse_args(argv)
    missing = [str(teacher) for teacher in args.teacher if not teacher.is_file()]
    if missing:
        parser.error(f"teacher not found: {', '.join(missing)}")
    views = VIEW_SETS[args.views]
    if args.measure_only:
        members, ensemble, _ = score_teachers(args.teacher, load_split(args.data, "val"), views)
        print(json.dumps({"members": [asdict(m) for m in members], "ensemble": ensemble, "views": list(views)},
                         indent=2), flush=True)
        return 0
    record = write_teacher_targets(args.teacher, args.data, args.out, views)
    print(json.dumps(asdict(record), indent=2), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
