"""Model benchmark: the shipped FER model and the two anchors, on FER2013 val and on a 640x480 clip.

Per model: accuracy and macro recall on all of ../shared/datasets/fer2013/val, median ms per face (1 thread,
batch 1, preprocessing included), file size, frames per second of detection + classification over a 640x480 clip
composed from val faces, and ratios against the seed anchor. Notes add face-detection ms per frame size and the
detectors' hit/false counts on composed scenes and on the reference photos.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from bench.table import Section
from fer import BlazeFaceDetector, EmotionClassifier, FaceDetector, HaarFaceDetector, LABELS, analyze
from fer.anchors import ANCHOR_METADATA, DEFAULT_ANCHORS_DIR, anchor_path, load_anchor
from fer.classifier import DEFAULT_MODEL_PATH
from fer.scenes import FRAME_SIZES, compose_scene, matches

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = Path(os.environ.get("FER_SHARED_DIR", PROJECT_ROOT.parent / "shared"))
VAL_DIR = SHARED_DIR / "datasets" / "fer2013" / "val"
PHOTOS_DIR = SHARED_DIR / "datasets" / "photos"
ANCHORS_DIR = DEFAULT_ANCHORS_DIR
# Committed reference models from training (each .tflite with its sidecar): the seed EDNN as reproduced here and the
# shipped network before int8 quantization, so one bench run compares every model the training issue reports.
REFERENCE_DIR = PROJECT_ROOT / "training" / "reference"
# Reference photos: each has exactly one clearly visible face (../shared/datasets/photos/README.md).
PHOTO_NAMES = ("alex-lacamoire.png", "johnsnow_test1.jpg", "lin-manuel-miranda.png", "obama.jpg", "obama2.jpg",
               "obama3.jpg", "obama_small.jpg")
TIMED_FACES = 300  # single-face predictions timed per model
CLIP_FRAMES = 60
SCENES_PER_SIZE = 20

COLUMNS = ["model", "val acc", "macro recall", "ms/face", "ms/face b16", "size KB", "clip fps", "acc x seed", "recall x seed",
           "ms x seed", "fps x seed"]


def run() -> Section:
    section = Section("model: FER2013 val accuracy, speed (1 thread), 640x480 clip fps", COLUMNS)
    if not VAL_DIR.is_dir():
        section.skipped = f"FER2013 val not found at {VAL_DIR}"
        return section
    images, labels = load_val(VAL_DIR)
    models = load_models(section)
    if not models:
        section.skipped = "no model: neither the shipped model nor the anchors in ../shared/anchors"
        return section
    detector = BlazeFaceDetector()
    clip = make_clip(images, CLIP_FRAMES)
    accuracy = {name: measure_accuracy(model, images, labels) for name, model in models.items()}
    speed = measure_speed(models, images[:TIMED_FACES], clip, detector)
    seed = "seed_ednn" if "seed_ednn" in models else None
    for name, model in models.items():
        (acc, recall), (ms, ms_batched, fps) = accuracy[name], speed[name]
        ratios = [acc / accuracy[seed][0], recall / accuracy[seed][1], ms / speed[seed][0], fps / speed[seed][2]] \
            if seed else ["-"] * 4
        section.add(name, acc, recall, ms, ms_batched, model.size_bytes / 1024, fps, *ratios)
    section.notes.append(f"val: {len(labels)} images; ms/face = median of {TIMED_FACES} single-face predict() calls "
                         f"(b16: per face in batches of 16, one resized invoke each); "
                         f"clip: {CLIP_FRAMES} frames 640x480, one val face each, BlazeFace + classifier via fer.analyze, "
                         f"fps = 1000 / median frame ms")
    section.notes += detection_notes(images)
    return section


def load_val(val_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    images: list[np.ndarray] = []
    labels: list[int] = []
    for index, label in enumerate(LABELS):
        for path in sorted((val_dir / label).glob("*.jpg")):
            images.append(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))
            labels.append(index)
    return np.stack(images), np.array(labels)


def load_models(section: Section) -> dict[str, EmotionClassifier]:
    models: dict[str, EmotionClassifier] = {}
    if DEFAULT_MODEL_PATH.is_file():
        models[f"shipped ({DEFAULT_MODEL_PATH.stem})"] = EmotionClassifier.load(num_threads=1)
    else:
        section.notes.append(f"shipped model absent ({DEFAULT_MODEL_PATH.name}): run python -m training.export")
    for path in sorted(REFERENCE_DIR.glob("*.tflite")):
        models[path.stem] = EmotionClassifier.load(path, num_threads=1)
    for name in ANCHOR_METADATA:
        path = anchor_path(ANCHORS_DIR, name)
        if path.is_file():
            models[name] = load_anchor(ANCHORS_DIR, name, num_threads=1)
        else:
            section.notes.append(f"anchor {name} absent ({path})")
    return models


def measure_accuracy(model: EmotionClassifier, images: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Accuracy and macro recall (mean of per-class recalls: FER2013 is imbalanced, disgust is 1.5% of val)."""
    predicted = model.predict(images).argmax(axis=1)
    recalls = [float((predicted[labels == k] == k).mean()) for k in range(len(LABELS)) if (labels == k).any()]
    return float((predicted == labels).mean()), float(np.mean(recalls))


def measure_speed(models: dict[str, EmotionClassifier], faces: np.ndarray, clip: list[np.ndarray],
                  detector: FaceDetector) -> dict[str, tuple[float, float, float]]:
    """(ms per face at batch 1, ms per face in batches of 16, clip fps) per model.

    Models are timed in turn inside each repetition, not one after the other, so a busy machine slows them alike
    and the ratios stay meaningful.
    """
    single: dict[str, list[float]] = {name: [] for name in models}
    batched: dict[str, list[float]] = {name: [] for name in models}
    clip_ms: dict[str, list[float]] = {name: [] for name in models}
    for model in models.values():  # warm-up: the first invoke allocates
        model.predict(faces[:1])
        analyze(clip[0], classifier=model, detector=detector)
    for face in faces:
        for name, model in models.items():
            single[name].append(timed(lambda: model.predict(face[None])))
    for model in models.values():
        model.max_batch = 16
    for start in range(0, len(faces) - 15, 16):
        for name, model in models.items():
            batched[name].append(timed(lambda: model.predict(faces[start:start + 16])) / 16)
    for model in models.values():
        model.max_batch = model.DEFAULT_MAX_BATCH
    for frame in clip:
        for name, model in models.items():
            clip_ms[name].append(timed(lambda: analyze(frame, classifier=model, detector=detector)))
    # fps from the median frame time: robust to the other processes' bursts on a shared machine.
    return {name: (statistics.median(single[name]), statistics.median(batched[name]),
                   1000 / statistics.median(clip_ms[name])) for name in models}


def make_clip(images: np.ndarray, frames: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    picks = rng.choice(len(images), frames, replace=False)
    return [compose_scene([images[i]], FRAME_SIZES["640x480"], rng).frame for i in picks]


def detection_notes(images: np.ndarray) -> list[str]:
    """Per detector and frame size: median ms, faces found, false detections; then the reference-photo check.

    Both detectors see each scene in turn (interleaved), so a busy machine slows them alike.
    """
    detectors: dict[str, FaceDetector] = {"BlazeFace (default)": BlazeFaceDetector(), "Haar (tuned)": HaarFaceDetector()}
    parts: dict[str, list[str]] = {name: [] for name in detectors}
    for size_name, size in FRAME_SIZES.items():
        rng = np.random.default_rng(1)
        times: dict[str, list[float]] = {name: [] for name in detectors}
        counts = {name: [0, 0, 0] for name in detectors}  # found, faces, false
        for _ in range(SCENES_PER_SIZE):
            picks = rng.choice(len(images), int(rng.integers(1, 3)), replace=False)
            scene = compose_scene([images[i] for i in picks], size, rng)
            for name, detector in detectors.items():
                boxes: list = []
                times[name].append(timed(lambda: boxes.extend(detector.detect(scene.frame))))
                counts[name][0] += sum(any(matches(b, t) for b in boxes) for t in scene.boxes)
                counts[name][1] += len(scene.boxes)
                counts[name][2] += sum(not any(matches(b, t) for t in scene.boxes) for b in boxes)
        for name in detectors:
            found, faces, false = counts[name]
            parts[name].append(f"{size_name} {statistics.median(times[name]):.1f} ms, found {found}/{faces}, false {false}")
    notes = [f"detection {name}: " + "; ".join(parts[name]) for name in detectors]
    notes.append(tracking_note(images))
    if PHOTOS_DIR.is_dir():
        for name, detector in detectors.items():
            counts_per_photo = [len(detector.detect(cv2.imread(str(PHOTOS_DIR / n)))) for n in PHOTO_NAMES
                                if (PHOTOS_DIR / n).is_file()]
            notes.append(f"detection {name}: reference photos with exactly 1 face reported: "
                         f"{sum(c == 1 for c in counts_per_photo)}/{len(counts_per_photo)} "
                         f"(faces reported per photo: {counts_per_photo})")
    return notes


def tracking_note(images: np.ndarray) -> str:
    """What the video tracker (fer.tracking) pays per followed frame instead of a whole-frame detection: the 128x128
    short-range BlazeFace on a square of twice the face's side, against the back model on the whole 640x480 frame."""
    from fer import BlazeFaceShortDetector

    full, short = BlazeFaceDetector(), BlazeFaceShortDetector()
    rng = np.random.default_rng(2)
    full_ms, track_ms, found = [], [], 0
    for _ in range(SCENES_PER_SIZE):
        scene = compose_scene([images[int(rng.integers(len(images)))]], FRAME_SIZES["640x480"], rng)
        boxes: list = []
        full_ms.append(timed(lambda: boxes.extend(full.detect(scene.frame))))
        if not boxes:
            continue
        box = boxes[0]
        side = 2 * box.w
        region = (int(box.center[0] - side / 2), int(box.center[1] - side / 2), side, side)
        near: list = []
        track_ms.append(timed(lambda: near.extend(short.detect_region(scene.frame, region))))
        found += bool(near)
    return (f"tracking step (short-range BlazeFace 128x128 on 2x the face box) {statistics.median(track_ms or [0]):.1f} ms "
            f"vs whole-frame BlazeFace {statistics.median(full_ms):.1f} ms at 640x480 (median); it found the face again "
            f"in {found}/{len(track_ms)} scenes")


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000
