"""Offline analysis of a recorded session video: the loop behind `python -m pi_agent analyze` and the web app's
"recorded video" upload.

Frames are picked by their time in the video (`fps` analysed frames per second of video, 0 = every frame), so the
result does not depend on how fast the machine is. Each analysed face becomes one row: `t` (seconds into the video),
the 7 probabilities in `fer.LABELS` order, the dominant label and the face box in the video's own pixels.
Nothing of the video itself is kept: only the rows.
"""

from __future__ import annotations

import csv
import hashlib
import math
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from fer.labels import LABELS
from pi_agent.vision import FrameAnalyzer
from store.models import Reading

CSV_COLUMNS: tuple[str, ...] = ("t", *LABELS, "dominant", "x", "y", "w", "h")
# Readings from a video get ids derived from (session, video content, frame, face): analysing the same video into the
# same session twice is then idempotent instead of doubling every reading.
_READING_NAMESPACE = uuid.UUID("5b0f7c1e-3a59-4f0b-9a51-6a3d2f0e9c11")

ProgressCallback = Callable[[int, int | None], None]  # (frames read so far, total frames or None when unknown)


class VideoError(ValueError):
    """The file is missing or is not a video OpenCV can decode."""


@dataclass(frozen=True)
class VideoFaceRow:
    t: float  # seconds into the video
    frame_index: int
    probabilities: tuple[float, ...]  # 7 values, fer.LABELS order
    dominant: str
    box: tuple[int, int, int, int]  # x, y, w, h in video pixels
    faces_in_frame: int = 1

    def csv_row(self) -> list[object]:
        return [f"{self.t:.3f}", *(f"{p:.6f}" for p in self.probabilities), self.dominant, *self.box]


@dataclass
class VideoAnalysis:
    path: Path
    video_fps: float
    frames_read: int = 0
    frames_analysed: int = 0
    rows: list[VideoFaceRow] = field(default_factory=list)
    fingerprint: str = ""

    @property
    def duration_s(self) -> float:
        return self.frames_read / self.video_fps if self.video_fps else 0.0


def analyze_video(
    path: Path | str,
    analyzer: FrameAnalyzer,
    fps: float = 4.0,
    on_progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> VideoAnalysis:
    """Analyse `path`, `fps` frames per second of video (0: every frame). Raises VideoError for a missing or
    undecodable file. `on_progress` is called about once per analysed frame; `should_stop` lets a UI cancel."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise VideoError(f"video not found: {path}")
    if fps < 0 or not math.isfinite(fps):
        raise VideoError(f"fps must be >= 0, got {fps}")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise VideoError(f"cannot read {path}: not a video file OpenCV can decode")
        video_fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        if not (0.5 <= video_fps <= 1000.0):
            video_fps = 0.0  # unknown: fall back to the container's timestamps below
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0) or None
        result = VideoAnalysis(path=path, video_fps=video_fps, fingerprint=_fingerprint(path))
        step = 1.0 / fps if fps > 0 else 0.0
        next_t = 0.0
        while True:
            if should_stop is not None and should_stop():
                break
            ok = capture.grab()
            if not ok:
                break
            index = result.frames_read
            result.frames_read += 1
            t = index / video_fps if video_fps else capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if step and t + 1e-6 < next_t:
                continue
            while step and next_t <= t + 1e-6:
                next_t += step
            ok, image = capture.retrieve()
            if not ok or image is None:
                continue  # one corrupt frame must not end the analysis
            analysis = analyzer.analyze(image)
            result.frames_analysed += 1
            result.rows.extend(
                VideoFaceRow(t, index, face.probabilities, face.dominant, face.box, analysis.faces_found)
                for face in analysis.faces
            )
            if on_progress is not None:
                on_progress(result.frames_read, total)
        if result.frames_read == 0:
            raise VideoError(f"cannot read {path}: no decodable frames")
        if on_progress is not None:
            on_progress(result.frames_read, total)
        return result
    finally:
        capture.release()


def write_csv(rows: Iterable[VideoFaceRow], out: Path | str) -> int:
    """Write the rows with the stable column set `CSV_COLUMNS`; returns how many rows were written."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            writer.writerow(row.csv_row())
            count += 1
    return count


def readings_for_session(analysis: VideoAnalysis, session_id: uuid.UUID, video_started_at: datetime) -> list[Reading]:
    """The rows as readings (source "video"), stamped `video_started_at + t`, with ids stable across re-runs."""
    return [
        Reading(
            id=uuid.uuid5(_READING_NAMESPACE, f"{session_id}/{analysis.fingerprint}/{row.frame_index}/{n}"),
            session_id=session_id,
            captured_at=video_started_at + timedelta(seconds=row.t),
            probabilities=row.probabilities,
            source="video",
            box=row.box,
            faces=row.faces_in_frame,
        )
        for n, row in enumerate(analysis.rows)
    ]


def _fingerprint(path: Path) -> str:
    """Size plus a hash of the first MiB: cheap, and enough to tell two uploads apart."""
    digest = hashlib.sha256(str(path.stat().st_size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(2**20))
    return digest.hexdigest()[:32]
