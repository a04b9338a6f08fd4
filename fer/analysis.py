"""`fer.analyze(frame)`: detect every face, classify each, one call (like the `fer` library's `detect_emotions`).

The default classifier and detector are created on first use and cached for the process, so calling `analyze`
per video frame costs only detection and inference.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from fer.classifier import EmotionClassifier
from fer.detection import BlazeFaceDetector, FaceBox, FaceDetector
from fer.images import ColorOrder, check_frame
from fer.labels import LABELS
from fer.preprocess import face_crops


@dataclass(frozen=True)
class FaceResult:
    box: FaceBox  # (x, y, w, h) in frame pixels; unpacks like a tuple
    probabilities: tuple[float, ...]  # 7 floats in LABELS order, summing to 1
    detection_ms: float  # time to find all faces of the frame (shared by its faces)
    prediction_ms: float  # time to classify all faces of the frame (one batch)

    @property
    def dominant(self) -> str:
        return LABELS[int(np.argmax(self.probabilities))]

    @property
    def emotions(self) -> dict[str, float]:
        return dict(zip(LABELS, self.probabilities))


_defaults_lock = threading.Lock()
_default_classifier: EmotionClassifier | None = None
_default_detector: FaceDetector | None = None


def default_classifier() -> EmotionClassifier:
    """The shipped model, loaded once per process (raises ModelNotFoundError until training exported it)."""
    global _default_classifier
    with _defaults_lock:
        if _default_classifier is None:
            _default_classifier = EmotionClassifier.load()
        return _default_classifier


def default_detector() -> FaceDetector:
    global _default_detector
    with _defaults_lock:
        if _default_detector is None:
            _default_detector = BlazeFaceDetector()
        return _default_detector


def analyze(frame: np.ndarray, *, classifier: EmotionClassifier | None = None, detector: FaceDetector | None = None,
            color: ColorOrder = "bgr", largest_only: bool = False) -> list[FaceResult]:
    """One FaceResult per face found in `frame` (uint8 gray/BGR/RGB, any size), largest face first."""
    frame = check_frame(frame)
    classifier = classifier or default_classifier()
    detector = detector or default_detector()
    started = time.perf_counter()
    boxes = detector.detect(frame, largest_only=largest_only, color=color)
    detected = time.perf_counter()
    if not boxes:
        return []
    probabilities = classifier.predict(face_crops(frame, boxes, classifier.input_size, color))
    finished = time.perf_counter()
    detection_ms, prediction_ms = (detected - started) * 1000, (finished - detected) * 1000
    return [FaceResult(box, tuple(float(p) for p in row), detection_ms, prediction_ms)
            for box, row in zip(boxes, probabilities)]
