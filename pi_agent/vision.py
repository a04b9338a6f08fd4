"""The agent's view of the `fer` video pipeline (`fer.video.VideoPipeline`): one call per camera frame that returns the
patient's face to record and the timings the seed printed. The pipeline downscales to the configured width and tracks
one patient across frames (fer/tracking.py); boxes come back in the source frame's pixels, so readings and CSV rows
describe the frame the camera or video delivered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from fer.labels import LABELS
from fer.video import FaceQuality, FrameReading, VideoPipeline


class VisionError(RuntimeError):
    """The model or detector could not be loaded; the message says what to do."""


@dataclass(frozen=True)
class FaceReading:
    box: tuple[int, int, int, int]  # x, y, w, h in the source frame
    probabilities: tuple[float, ...]  # 7 values, fer.LABELS order
    dominant: str
    quality: FaceQuality | None = None


@dataclass(frozen=True)
class FrameAnalysis:
    faces: list[FaceReading]  # what is recorded: the patient's face only, unless all faces were asked for
    faces_found: int  # faces in view (the last whole-frame detection)
    detection_ms: float
    prediction_ms: float
    results: list = field(default_factory=list, repr=False)  # fer.FaceResult objects, for fer's metrics helpers
    reading: FrameReading | None = field(default=None, repr=False)  # the pipeline's own reading (tracking mode)


class FrameAnalyzer:
    """`analyze(frame) -> FrameAnalysis` on one `VideoPipeline` (one camera: the tracker keeps its patient).

    With `largest_face_only=False` (`--all-faces`) every face of every frame is detected and classified instead, without
    tracking: the seed's behaviour, for group recordings.
    """

    def __init__(self, pipeline: VideoPipeline, frame_width: int = 640, largest_face_only: bool = True) -> None:
        self.pipeline = pipeline
        self.pipeline.frame_width = frame_width
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
        import fer

        if not self.largest_face_only:
            return self._all_faces(frame)
        reading = self.pipeline.process(frame)
        times = reading.times
        faces = [FaceReading(face.box, face.probabilities, face.dominant, face.quality) for face in reading.faces]
        detection_ms = times.detect_ms + times.track_ms
        results = [fer.FaceResult(fer.FaceBox(*face.box), face.probabilities, detection_ms, times.classify_ms)
                   for face in faces]
        return FrameAnalysis(faces, max(reading.faces_in_view, len(faces)), detection_ms, times.classify_ms, results,
                             reading)

    def _all_faces(self, frame: np.ndarray) -> FrameAnalysis:
        import time

        import cv2

        import fer

        scale, small = 1.0, frame
        if self.frame_width and frame.shape[1] > self.frame_width:
            scale = frame.shape[1] / self.frame_width
            small = cv2.resize(frame, (self.frame_width, round(frame.shape[0] / scale)), interpolation=cv2.INTER_AREA)
        started = time.perf_counter()
        results = fer.analyze(small, classifier=self.pipeline.classifier, detector=self.pipeline.detector)
        total_ms = (time.perf_counter() - started) * 1000
        faces = [FaceReading(tuple(int(round(v * scale)) for v in r.box.as_tuple()), r.probabilities, r.dominant)
                 for r in results]
        detection_ms = results[0].detection_ms if results else total_ms
        prediction_ms = results[0].prediction_ms if results else 0.0
        return FrameAnalysis(faces, len(results), detection_ms, prediction_ms, list(results))


def load_fer_analyze(model_path, detector: str = "default", min_face: int = 48, num_threads: int = 1) -> VideoPipeline:
    """The `fer` video pipeline on one loaded model and detector. Raises VisionError with fer's message."""
    import fer

    try:
        return fer.VideoPipeline.load(model_path, detector=detector, min_face=min_face, num_threads=num_threads)
    except (fer.FerError, ValueError) as error:
        raise VisionError(f"cannot load the vision models: {error}") from error


def dominant_label(probabilities: Sequence[float]) -> str:
    return LABELS[int(np.argmax(probabilities))]
