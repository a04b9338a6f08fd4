"""Data quality of readings: which ones come from a usable face, and how much of what was analysed had one.

One function decides (`quality_problems`), so that when readings carry the capture pipeline's own quality fields (face
size, detector score, distance to the frame edge, turned away; being added to `store.models.Reading` by the video work)
only this module changes. Until then it judges what every reading has: its face box, against the frame the sources
analyse (the Pi agent and the remote page resize frames to 640 px wide; `DEFAULT_FRAME` below).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from store.models import Reading

MIN_FACE_PX = 48  # the model sees 48x48 faces (FER2013): a smaller box is upscaled blur, not an expression
EDGE_MARGIN_PX = 4  # a box this close to the frame's edge is cut off: part of the face is missing
MIN_DETECTOR_SCORE = 0.6  # used when readings carry the detector's score
DEFAULT_FRAME = (640, 480)  # width, height the sources analyse (pi_agent frame_width 640; 4:3 cameras)


@dataclass(frozen=True)
class QualitySummary:
    readings: int
    usable: int
    analysed_frames: int | None  # frames the source analysed, when it reports them (faceless frames leave no reading)

    @property
    def low_quality(self) -> int:
        return self.readings - self.usable

    @property
    def usable_share(self) -> float | None:
        """Share of analysed frames with a usable face (of the readings, when the source does not report frames)."""
        denominator = self.analysed_frames if self.analysed_frames else self.readings
        return None if not denominator else min(self.usable / denominator, 1.0)


def quality_problems(reading: Reading, frame: tuple[int, int] = DEFAULT_FRAME) -> tuple[str, ...]:
    """Why a reading is low quality, in words ("tiny face", "face at the frame edge", "face turned away", ...);
    empty for a usable one."""
    problems: list[str] = []
    if getattr(reading, "turned_away", False):
        problems.append("face turned away")
    score = getattr(reading, "score", None)
    if score is not None and score < MIN_DETECTOR_SCORE:
        problems.append("unsure detection")
    if reading.box is None:
        problems.append("no face box")
        return tuple(problems)
    x, y, w, h = reading.box
    width, height = getattr(reading, "frame_size", None) or frame
    if min(w, h) < MIN_FACE_PX:
        problems.append("tiny face")
    if x <= EDGE_MARGIN_PX or y <= EDGE_MARGIN_PX or x + w >= width - EDGE_MARGIN_PX or y + h >= height - EDGE_MARGIN_PX:
        problems.append("face at the frame edge")
    return tuple(problems)


def is_usable(reading: Reading) -> bool:
    return not quality_problems(reading)


def summarize(readings: Sequence[Reading], analysed_frames: int | None = None) -> QualitySummary:
    return QualitySummary(len(readings), sum(1 for r in readings if is_usable(r)), analysed_frames)
