"""The one video pipeline: frames in, one reading per analysed frame out, for the Pi agent, `pi_agent analyze`, the app's
recorded-video import and the remote sessions' server-side analysis.

    pipeline = fer.VideoPipeline.load()                  # shipped model, BlazeFace + tracker
    reading = pipeline.process(frame_bgr, t=seconds)     # FrameReading: the patient's face (or None), quality, timings
    analysis = fer.analyze_video("session.mp4", pipeline, fps=4)   # a whole file, decoding on a reader thread

Per frame: downscale to `frame_width` (boxes are scaled back to the source frame's pixels), `FaceTracker` finds the
patient (full detection to acquire, the short-range model around the last box after that, see fer/tracking.py), the
patient's face alone is classified. Each reading carries a `FaceQuality` (size, detector score, near the frame edge,
turned away) so callers can filter. Nothing of the frames is kept.
"""

from __future__ import annotations

import hashlib
import math
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fer.classifier import EmotionClassifier
from fer.detection import BlazeFaceDetector, BlazeFaceShortDetector, FaceBox, FaceDetector, make_detector
from fer.errors import FerError
from fer.images import ColorOrder, check_frame
from fer.labels import LABELS
from fer.preprocess import face_crops
from fer.tracking import FaceTracker, TrackStep

MIN_CLASSIFY_PIXELS = 48  # FER2013's own face size: smaller faces are upscaled guesses
EDGE_MARGIN = 0.02  # a box this close (fraction of the short side) to the frame edge is likely cut by it
TURNED_AWAY_YAW = 0.6  # |nose offset from the eyes' midpoint| / eye distance; frontal reference photos: 0.00-0.30
LOW_SCORE = 0.6
MAX_ANALYSIS_FPS = 60.0  # `fps` for analyze_video: 0 (every frame) or MIN..MAX analysed frames per second of video
MIN_ANALYSIS_FPS = 0.1
READER_QUEUE_FRAMES = 8  # decoded frames waiting for analysis at most (bounded: never buffer a whole video)
# A container's frame count can be off by a frame or two; fewer decoded frames than this share of it is a cut-short file.
COMPLETE_FRACTION = 0.97
# Readings from a video get ids derived from (session, video content, frame, face): analysing the same video into the
# same session twice is then idempotent instead of doubling every reading.
READING_NAMESPACE = uuid.UUID("5b0f7c1e-3a59-4f0b-9a51-6a3d2f0e9c11")


# --- per-frame readings -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FaceQuality:
    """How far a reading can be trusted, from the face alone."""

    face_pixels: int  # side of the face box in source-frame pixels
    face_fraction: float  # that side over the frame's shorter side
    score: float  # detector confidence 0..1
    near_edge: bool  # the box touches the frame's border margin: likely cut, expression partly unseen
    turned_away: bool  # BlazeFace's keypoints: nose far off the eyes' midpoint (a profile, head turned)
    yaw: float | None  # that offset, signed, in eye distances (None without keypoints, e.g. Haar)

    @property
    def tiny(self) -> bool:
        return self.face_pixels < MIN_CLASSIFY_PIXELS

    @property
    def ok(self) -> bool:
        """No flag raised: a frontal face, whole, large enough, confidently detected."""
        return not (self.tiny or self.near_edge or self.turned_away or self.score < LOW_SCORE)

    @property
    def flags(self) -> tuple[str, ...]:
        names = [("tiny", self.tiny), ("near_edge", self.near_edge), ("turned_away", self.turned_away),
                 ("low_score", self.score < LOW_SCORE)]
        return tuple(name for name, raised in names if raised)


def face_quality(box: FaceBox, frame_width: int, frame_height: int, scale: float = 1.0) -> FaceQuality:
    """Quality of `box` (in a frame of this size); `scale` converts the box's pixels to source-frame pixels."""
    short = min(frame_width, frame_height)
    margin = max(2.0, EDGE_MARGIN * short)
    near_edge = (box.x <= margin or box.y <= margin or box.x + box.w >= frame_width - margin
                 or box.y + box.h >= frame_height - margin)
    yaw = None
    if box.keypoints:
        (right_x, _), (left_x, _), (nose_x, _) = box.keypoints[0], box.keypoints[1], box.keypoints[2]
        eyes = abs(left_x - right_x)
        yaw = float((nose_x - (left_x + right_x) / 2) / eyes) if eyes > 1 else float("inf")
    side = max(box.w, box.h)
    return FaceQuality(int(round(side * scale)), side / short if short else 0.0, float(box.score), bool(near_edge),
                       yaw is not None and not abs(yaw) <= TURNED_AWAY_YAW, yaw if yaw is None or math.isfinite(yaw) else None)


@dataclass(frozen=True)
class PatientFace:
    box: tuple[int, int, int, int]  # x, y, w, h in the source frame's pixels
    probabilities: tuple[float, ...]  # 7 values, LABELS order
    quality: FaceQuality

    @property
    def dominant(self) -> str:
        return LABELS[int(np.argmax(self.probabilities))]


@dataclass(frozen=True)
class StageTimes:
    """Milliseconds per stage for one frame (decode is filled in by whoever decoded it)."""

    decode_ms: float = 0.0
    detect_ms: float = 0.0  # whole-frame detection (acquire, lost, periodic, after a cut)
    track_ms: float = 0.0  # local search around the last box, cut check, appearance
    classify_ms: float = 0.0  # crop + emotion model
    other_ms: float = 0.0  # downscaling and the rest of the pipeline


@dataclass(frozen=True)
class FrameReading:
    """One analysed frame: the patient's face or None (not in view, or only other people were)."""

    face: PatientFace | None
    identity: int | None  # the tracker's patient number (see fer.tracking)
    faces_in_view: int  # faces the last whole-frame detection saw
    method: str  # "track", "full" or "none"
    cut: bool
    times: StageTimes
    t: float | None = None  # seconds into the video, when known
    frame_index: int | None = None

    @property
    def faces(self) -> list[PatientFace]:
        return [] if self.face is None else [self.face]


class VideoPipeline:
    """One stream's analysis state (the tracker follows one patient): use one pipeline per camera, video or remote
    patient, from one thread at a time."""

    def __init__(self, classifier: EmotionClassifier, detector: FaceDetector | None = None, *,
                 local: BlazeFaceShortDetector | None = None, tracking: bool = True, frame_width: int | None = 640,
                 redetect_every: int = 15, forget_after_s: float = 10.0, color: ColorOrder = "bgr") -> None:
        self.classifier = classifier
        self.detector = detector or BlazeFaceDetector()
        if tracking and local is None and isinstance(self.detector, BlazeFaceDetector):
            local = BlazeFaceShortDetector(num_threads=1)
        self.tracker = FaceTracker(self.detector, local if tracking else None, color=color,
                                   redetect_every=redetect_every if tracking else 1, forget_after_s=forget_after_s)
        self.frame_width = frame_width
        self.color = color

    @classmethod
    def load(cls, model_path: str | Path | None = None, *, detector: str = "blazeface", min_face: int = 24,
             num_threads: int = 1, **options) -> "VideoPipeline":
        """The model at `model_path` (default: the shipped one) with the named detector ("blazeface", "haar";
        "default" = blazeface). Raises FerError subclasses (ModelNotFoundError, InvalidModelError) or ValueError."""
        classifier = EmotionClassifier.load(model_path, num_threads=num_threads)
        kind = "blazeface" if detector in ("default", "", None) else detector
        face_detector = make_detector(kind, min_face_pixels=min_face)
        return cls(classifier, face_detector, **options)

    def reset(self) -> None:
        self.tracker.reset()

    def _face_crop(self, frame: np.ndarray, box: FaceBox) -> np.ndarray:
        """`fer.face_crops` of one box, converting only the face's neighbourhood to grey (not the whole frame)."""
        height, width = frame.shape[:2]
        x0, y0 = max(0, box.x - box.w // 16 - 1), max(0, box.y - 1)
        x1, y1 = min(width, box.x + box.w + box.w // 16 + 2), min(height, box.y + box.h + box.h // 8 + 2)
        local = FaceBox(box.x - x0, box.y - y0, box.w, box.h, box.score)
        return face_crops(frame[y0:y1, x0:x1], [local], self.classifier.input_size, self.color)

    def process(self, frame: np.ndarray, t: float | None = None, frame_index: int | None = None,
                decode_ms: float = 0.0) -> FrameReading:
        started = time.perf_counter()
        frame = check_frame(frame)
        scale, small = 1.0, frame
        if self.frame_width and frame.shape[1] > self.frame_width:
            scale = frame.shape[1] / self.frame_width
            small = cv2.resize(frame, (self.frame_width, round(frame.shape[0] / scale)), interpolation=cv2.INTER_AREA)
        step: TrackStep = self.tracker.update(small, t)
        classify_ms = 0.0
        face = None
        if step.box is not None:
            classify_started = time.perf_counter()
            probabilities = self.classifier.predict(self._face_crop(small, step.box))[0]
            classify_ms = (time.perf_counter() - classify_started) * 1000
            box = step.box
            face = PatientFace(tuple(int(round(v * scale)) for v in box.as_tuple()),  # type: ignore[arg-type]
                               tuple(float(p) for p in probabilities),
                               face_quality(box, small.shape[1], small.shape[0], scale))
        total_ms = (time.perf_counter() - started) * 1000
        times = StageTimes(decode_ms, step.detect_ms, step.track_ms, classify_ms,
                           max(0.0, total_ms - step.detect_ms - step.track_ms - classify_ms))
        return FrameReading(face, step.identity, step.faces_in_view, step.method, step.cut, times, t, frame_index)


# --- whole videos -------------------------------------------------------------------------------------------------------
class VideoError(FerError, ValueError):
    """The file is missing, is not a video, or is cut short. The message is in the user's terms and names no path
    beyond the name the caller gave (`display_name`)."""


class VideoIncompleteError(VideoError):
    """The video decodes only partly (a truncated upload or copy); `analysis` holds what did decode."""

    def __init__(self, message: str, analysis: "VideoAnalysis") -> None:
        super().__init__(message)
        self.analysis = analysis


@dataclass(frozen=True)
class VideoFaceRow:
    t: float  # seconds into the video
    frame_index: int
    probabilities: tuple[float, ...]  # 7 values, LABELS order
    dominant: str
    box: tuple[int, int, int, int]  # x, y, w, h in video pixels
    faces_in_frame: int = 1
    quality: FaceQuality | None = None

    def csv_row(self) -> list[object]:
        return [f"{self.t:.3f}", *(f"{p:.6f}" for p in self.probabilities), self.dominant, *self.box]


@dataclass
class VideoAnalysis:
    path: Path
    video_fps: float
    frames_read: int = 0
    frames_analysed: int = 0
    frames_expected: int | None = None  # what the container says, when it says
    rows: list[VideoFaceRow] = field(default_factory=list)
    fingerprint: str = ""
    stopped: bool = False  # `should_stop` ended it early (not the file)
    stage_ms: dict[str, float] = field(default_factory=dict)  # summed StageTimes over analysed frames
    stage_frames: dict[str, int] = field(default_factory=dict)  # analysed frames in which each stage ran

    @property
    def duration_s(self) -> float:
        return self.frames_read / self.video_fps if self.video_fps else 0.0

    @property
    def expected_duration_s(self) -> float | None:
        return self.frames_expected / self.video_fps if self.frames_expected and self.video_fps else None

    @property
    def complete(self) -> bool:
        return self.stopped or not self.frames_expected or self.frames_read >= COMPLETE_FRACTION * self.frames_expected - 1


ProgressCallback = Callable[[int, int | None], None]  # (frames read so far, total frames or None when unknown)


@dataclass(frozen=True)
class _Decoded:
    index: int
    t: float
    image: np.ndarray
    decode_ms: float


class FrameReader:
    """Decodes a video on its own thread into a bounded queue, so decoding overlaps with analysis. Frames the `fps`
    step skips are only grabbed (demuxed and decoded, never converted to BGR)."""

    def __init__(self, capture: "cv2.VideoCapture", video_fps: float, fps: float,
                 max_queued: int = READER_QUEUE_FRAMES) -> None:
        self._capture = capture
        self._video_fps = video_fps
        self._step = 1.0 / fps if fps > 0 else 0.0
        self._queue: queue.Queue[_Decoded | None] = queue.Queue(maxsize=max_queued)
        self._stop = threading.Event()
        self.frames_read = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fer-video-reader", daemon=True)

    def __iter__(self) -> Iterator[_Decoded]:
        self._thread.start()
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    break
                yield item
        finally:
            self.close()
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:  # unblock a reader waiting on a full queue
                self._queue.get_nowait()
            except queue.Empty:
                pass
            self._thread.join(0.05)

    def _put(self, item: _Decoded | None) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        next_t = 0.0
        try:
            while not self._stop.is_set():
                started = time.perf_counter()
                if not self._capture.grab():
                    break
                index = self.frames_read
                self.frames_read += 1
                t = index / self._video_fps if self._video_fps else self._capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                if self._step and t + 1e-6 < next_t:
                    continue
                while self._step and next_t <= t + 1e-6:
                    next_t += self._step
                ok, image = self._capture.retrieve()
                if not ok or image is None:
                    continue  # one corrupt frame must not end the analysis
                if not self._put(_Decoded(index, t, image, (time.perf_counter() - started) * 1000)):
                    return
        except BaseException as error:  # noqa: BLE001 - handed to the consumer
            self.error = error
        finally:
            self._put(None)


def check_fps(fps: float) -> float:
    """`fps` for analyze_video: 0 (every frame) or MIN_ANALYSIS_FPS..MAX_ANALYSIS_FPS. Raises VideoError."""
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise VideoError(f"the analysis rate must be a number, got {fps!r}") from None
    if value == 0 or (math.isfinite(value) and MIN_ANALYSIS_FPS <= value <= MAX_ANALYSIS_FPS):
        return value
    raise VideoError(f"the analysis rate must be 0 (every frame) or between {MIN_ANALYSIS_FPS:g} and "
                     f"{MAX_ANALYSIS_FPS:g} frames per second, got {fps}")


def analyze_video(
    path: Path | str,
    pipeline: VideoPipeline,
    fps: float = 4.0,
    on_progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    display_name: str | None = None,
    allow_incomplete: bool = False,
) -> VideoAnalysis:
    """Analyse `path`, `fps` frames per second of video (0: every frame), with a fresh track (one patient per video).

    Raises VideoError for a missing file, a file that is not a video or a bad `fps`, and VideoIncompleteError when the
    file decodes only partly (fewer frames than the container announces) unless `allow_incomplete`. Messages name the
    file as `display_name` (default: its name, never the folder: uploads live in server temp folders).
    `on_progress` is called about once per analysed frame; `should_stop` lets a UI cancel."""
    path = Path(path)
    name = display_name or path.name
    fps = check_fps(fps)
    if not path.is_file():
        raise VideoError(f"video not found: {name}")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise VideoError(f"cannot read {name}: this file is not a video (or not one this server can decode)")
        video_fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        if not (0.5 <= video_fps <= 1000.0):
            video_fps = 0.0  # unknown: fall back to the container's timestamps
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        total = total if total > 0 else None
        result = VideoAnalysis(path=path, video_fps=video_fps, frames_expected=total, fingerprint=fingerprint(path))
        pipeline.reset()
        reader = FrameReader(capture, video_fps, fps)
        sums = {"decode_ms": 0.0, "detect_ms": 0.0, "track_ms": 0.0, "classify_ms": 0.0, "other_ms": 0.0}
        ran = dict.fromkeys(sums, 0)
        for decoded in reader:
            if should_stop is not None and should_stop():
                result.stopped = True
                reader.close()
                break
            reading = pipeline.process(decoded.image, decoded.t, decoded.index, decoded.decode_ms)
            result.frames_analysed += 1
            for key in sums:
                spent = getattr(reading.times, key)
                sums[key] += spent
                ran[key] += spent > 0
            if reading.face is not None:
                face = reading.face
                result.rows.append(VideoFaceRow(decoded.t, decoded.index, face.probabilities, face.dominant, face.box,
                                                max(1, reading.faces_in_view), face.quality))
            if on_progress is not None:
                on_progress(reader.frames_read, total)
        result.frames_read = reader.frames_read
        result.stage_ms, result.stage_frames = sums, ran
        if result.frames_read == 0:
            raise VideoError(f"cannot read {name}: this file is not a video (no frame decodes)")
        if not result.complete and not allow_incomplete:
            raise VideoIncompleteError(incomplete_message(name, result), result)
        if on_progress is not None:
            on_progress(result.frames_read, total if result.complete else result.frames_read)
        return result
    finally:
        capture.release()


def incomplete_message(name: str, analysis: VideoAnalysis) -> str:
    expected = analysis.expected_duration_s
    of = f" of {expected:.1f} s" if expected else ""
    return (f"{name}: the video is cut short after {analysis.duration_s:.1f} s{of} "
            f"({analysis.frames_read} of {analysis.frames_expected} frames decode); the file is damaged or was not "
            f"copied or uploaded completely")


def fingerprint(path: Path) -> str:
    """Size plus a hash of the first MiB: cheap, and enough to tell two uploads apart."""
    digest = hashlib.sha256(str(path.stat().st_size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(2**20))
    return digest.hexdigest()[:32]


def reading_id(session_id: uuid.UUID, analysis: VideoAnalysis, row_number: int) -> uuid.UUID:
    """A reading id stable across re-runs of the same video into the same session."""
    row = analysis.rows[row_number]
    return uuid.uuid5(READING_NAMESPACE, f"{session_id}/{analysis.fingerprint}/{row.frame_index}/0")
