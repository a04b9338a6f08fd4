"""The agent's view of the `fer` vision core: one call per frame that returns the faces to record and the timings the
seed printed. Downscaling to the configured width happens here (the seed ran Haar at 640x360 on the Pi); boxes are
scaled back to the source frame's pixels, so readings and CSV rows describe the frame the camera or video delivered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from fer.labels import LABELS


class VisionError(RuntimeError):
    """The model or detector could not be loaded; the message says what to do."""


class FaceResultLike(Protocol):
    box: Sequence[int]  # fer.FaceBox: unpacks as x, y, w, h
    probabilities: Sequence[float]
    dominant: str


@dataclass(frozen=True)
class FaceReading:
    box: tuple[int, int, int, int]  # x, y, w, h in the source frame
    probabilities: tuple[float, ...]  # 7 values, fer.LABELS order
    dominant: str


@dataclass(frozen=True)
class FrameAnalysis:
    faces: list[FaceReading]  # what is recorded: the largest face only, unless all faces were asked for
    faces_found: int  # every face the detector found
    detection_ms: float
    prediction_ms: float
    results: list = field(default_factory=list, repr=False)  # fer's own FaceResult objects, for its metrics helpers


AnalyzeFn = Callable[[np.ndarray], Sequence[FaceResultLike]]


class FrameAnalyzer:
    def __init__(self, analyze: AnalyzeFn, frame_width: int = 640, largest_face_only: bool = True) -> None:
        self._analyze = analyze
        self.frame_width = frame_width
        self.largest_face_only = largest_face_only

    @classmethod
    def from_config(cls, config) -> "FrameAnalyzer":
        """The configured model and detector (see `pi_agent.config.AgentConfig`). Raises VisionError."""
        return cls(
            load_fer_analyze(config.model_path, config.detector, config.min_face, config.num_threads),
            frame_width=config.frame_width,
            largest_face_only=config.largest_face_only,
        )

    def analyze(self, frame: np.ndarray) -> FrameAnalysis:
        import cv2

        scale = 1.0
        small = frame
        if self.frame_width and frame.shape[1] > self.frame_width:
            scale = frame.shape[1] / self.frame_width
            small = cv2.resize(frame, (self.frame_width, round(frame.shape[0] / scale)), interpolation=cv2.INTER_AREA)
        started = time.perf_counter()
        results = list(self._analyze(small))
        total_ms = (time.perf_counter() - started) * 1000.0
        detection_ms, prediction_ms = _timings(results, total_ms)
        chosen = results
        if self.largest_face_only and len(results) > 1:
            chosen = [max(results, key=lambda r: _area(r.box))]
        faces = [
            FaceReading(
                box=tuple(int(round(v * scale)) for v in tuple(r.box)[:4]),
                probabilities=tuple(float(p) for p in r.probabilities),
                dominant=str(r.dominant),
            )
            for r in chosen
        ]
        return FrameAnalysis(faces, len(results), detection_ms, prediction_ms, results)


def _area(box) -> int:
    _, _, w, h = tuple(box)[:4]
    return int(w) * int(h)


def _timings(results: Sequence[FaceResultLike], total_ms: float) -> tuple[float, float]:
    """fer reports detection and prediction time per result; with no face, everything spent was detection."""
    for r in results:
        detection = getattr(r, "detection_ms", None)
        prediction = getattr(r, "prediction_ms", None)
        if detection is not None and prediction is not None:
            return float(detection), float(prediction)
    return total_ms, 0.0


def load_fer_analyze(model_path, detector: str = "default", min_face: int = 48, num_threads: int = 1) -> AnalyzeFn:
    """`fer.analyze` bound to one loaded model and detector. Raises VisionError with fer's message."""
    import fer

    try:
        classifier = fer.EmotionClassifier.load(model_path, num_threads=num_threads)
        face_detector = fer.make_detector(*(() if detector == "default" else (detector,)), min_face_pixels=min_face)
    except (fer.FerError, ValueError) as error:
        raise VisionError(f"cannot load the vision models: {error}") from error

    def analyze(frame: np.ndarray) -> list:
        # Every face is classified (one batch) so the reading can say how many were in view; the caller keeps the
        # largest. fer returns them largest first.
        return fer.analyze(frame, classifier=classifier, detector=face_detector)

    return analyze


def dominant_label(probabilities: Sequence[float]) -> str:
    return LABELS[int(np.argmax(probabilities))]
