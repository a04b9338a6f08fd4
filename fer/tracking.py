"""Follow one person's face (the patient) through a video: detect once, then search only around the last box.

Per frame, `FaceTracker.update(frame)` returns the patient's box or None:
- **acquire**: the full detector (BlazeFace back model, the whole frame and its tiles) finds the faces; the largest one
  becomes the patient (identity 1).
- **track**: on the following frames only a square around the last box (`SEARCH_SCALE` times its side) goes through the
  128x128 short-range BlazeFace model, about a quarter of a full detection. A face there is the patient when its
  position and size continue the track (centre moved less than half a side, side changed less than a third).
- **full detection again** every `redetect_every` frames (a drifting box is corrected, the face count refreshed), when
  the local search finds nothing, and after a **cut** (the picture outside the face changed at once, as when a video cuts
  to another shot).
- **identity**: after a cut or once the patient was lost, a face counts as the patient only if it looks like the
  patient (colour histogram and grey template of the face, `same_person`) or, with no cut in between, continues the last
  box. Any other face (a cut to another person, an audience face, the therapist walking in) is not the patient: the
  frame has no patient reading. Only when the patient has been gone for `forget_after_s` does the largest face become a
  new patient (identity 2, 3, ...): a new session subject, e.g. a camera moved to another chair.

Limits, said plainly: a cut to another person framed at the same place with an unchanged background and a similar
face histogram is followed as the same person; position and appearance are all the tracker knows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from fer.detection import BlazeFaceShortDetector, FaceBox, FaceDetector
from fer.images import ColorOrder, check_frame

THUMB_SIZE = (32, 24)  # frame thumbnail for cut detection (width, height)


@dataclass(frozen=True)
class Appearance:
    """A face's look, compared across cuts: hue-saturation histogram of its centre and a normalised grey template."""

    histogram: np.ndarray  # 16x8 H-S bins, sums to 1 (all in one bin for grey video)
    template: np.ndarray  # 24x24 grey, zero mean, unit norm (flattened)

    def similarity(self, other: "Appearance") -> float:
        """0..1: mean of histogram intersection and (positive) template correlation. Measured on the reference photos
        (docs/fer.md): the same face shifted by 5% and darkened 0.68-0.80, another person at most 0.60."""
        shared = float(np.minimum(self.histogram, other.histogram).sum())
        correlation = max(0.0, float(self.template @ other.template))
        return (shared + correlation) / 2

    def blend(self, other: "Appearance", weight: float) -> "Appearance":
        histogram = (1 - weight) * self.histogram + weight * other.histogram
        template = (1 - weight) * self.template + weight * other.template
        return Appearance(histogram / max(histogram.sum(), 1e-9), template / max(np.linalg.norm(template), 1e-9))


def appearance_of(frame: np.ndarray, box: FaceBox, color: ColorOrder = "bgr") -> Appearance:
    x, y, w, h = box
    face = frame[y : y + h, x : x + w]
    if face.ndim == 2 or face.shape[2] == 1:
        gray = face.reshape(face.shape[:2])
        histogram = np.zeros(16 * 8, np.float32)
        histogram[0] = 1.0
    else:
        face = face[:, :, :3]
        gray = cv2.cvtColor(face, cv2.COLOR_BGR2GRAY if color == "bgr" else cv2.COLOR_RGB2GRAY)
        margin_x, margin_y = w // 5, h // 5  # the centre: skin, not background or hair
        centre = face[margin_y : h - margin_y, margin_x : w - margin_x]
        hsv = cv2.cvtColor(centre, cv2.COLOR_BGR2HSV if color == "bgr" else cv2.COLOR_RGB2HSV)
        histogram = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256]).ravel()
        histogram /= max(float(histogram.sum()), 1e-9)
    template = cv2.resize(gray, (24, 24), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    template -= template.mean()
    template /= max(float(np.linalg.norm(template)), 1e-6)
    return Appearance(histogram.astype(np.float32), template)


@dataclass(frozen=True)
class TrackStep:
    """What the tracker decided for one frame."""

    box: FaceBox | None  # the patient's face, None when the patient is not in this frame
    identity: int | None  # 1 for the first patient; a new number only after `forget_after_s` without them
    method: str  # "track" (local search), "full" (whole-frame detection), "none" (nothing found)
    faces_in_view: int  # faces the last whole-frame detection saw (the patient included)
    others_rejected: int  # faces seen in this frame that are not the patient
    cut: bool  # the picture around the face changed at once (a cut in the video)
    detect_ms: float  # whole-frame detection time in this frame (0 when only the local search ran)
    track_ms: float  # local search, cut check and appearance bookkeeping


def continues(previous: FaceBox, candidate: FaceBox, max_shift: float = 0.5, max_resize: float = 1.5) -> bool:
    """Whether `candidate` continues `previous`: centre moved less than `max_shift` of the side, side changed less than
    `max_resize` times."""
    (px, py), (cx, cy) = previous.center, candidate.center
    side = max(previous.w, previous.h, 1)
    ratio = max(candidate.w, 1) / side
    return float(np.hypot(cx - px, cy - py)) <= max_shift * side and 1 / max_resize <= ratio <= max_resize


class FaceTracker:
    SEARCH_SCALE = 2.0  # side of the local search square, in face sides (room for a face moving half a side)
    CUT_THRESHOLD = 28.0  # mean grey change (0..255) of the thumbnail outside the face that counts as a cut
    SAME_PERSON = 0.62  # Appearance.similarity above which a face after a cut or loss is the patient
    APPEARANCE_EVERY = 5  # refresh the patient's appearance every this many tracked frames (it costs ~0.2 ms)
    # While the patient is away: a whole-frame detection that found no patient is reused as long as no thumbnail cell
    # outside the faces it rejected changed by more than this (grey levels): an empty room or another person sitting
    # still costs no detection, someone walking in does. Each thumbnail cell averages ~20x15 pixels, so sensor noise
    # stays far below it.
    STILL_THRESHOLD = 12.0

    def __init__(self, detector: FaceDetector, local: BlazeFaceShortDetector | None = None, *,
                 redetect_every: int = 15, forget_after_s: float = 10.0, color: ColorOrder = "bgr") -> None:
        if redetect_every < 1:
            raise ValueError(f"redetect_every must be >= 1, got {redetect_every}")
        self.detector = detector
        self.local = local
        self.redetect_every = redetect_every
        self.forget_after_s = forget_after_s
        self.color = color
        self.reset()

    def reset(self) -> None:
        """Forget the patient (a new video or session)."""
        self._box: FaceBox | None = None  # last box while the patient is in view
        self._last_box: FaceBox | None = None  # last box ever seen, kept while lost
        self._appearance: Appearance | None = None
        self._identity = 0
        self._since_full = 0
        self._since_appearance = 0
        self._last_seen_t: float | None = None
        self._cut_since_seen = False
        self._thumb: np.ndarray | None = None
        self._faces_in_view = 0
        self._idle: tuple[np.ndarray, list[FaceBox]] | None = None  # (thumbnail, rejected faces) of a fruitless search

    @property
    def identity(self) -> int | None:
        return self._identity or None

    def update(self, frame: np.ndarray, t: float | None = None) -> TrackStep:
        """The patient's face in `frame`; `t` is the frame's time in seconds (video time; default: the wall clock)."""
        frame = check_frame(frame)
        now = time.monotonic() if t is None else float(t)
        started = time.perf_counter()
        thumb = self._thumbnail(frame)
        cut = self._check_cut(frame, thumb)
        if cut:
            self._cut_since_seen = True
        found: FaceBox | None = None
        others = 0
        method = "none"
        detect_ms = 0.0
        if self._box is not None and not cut and self.local is not None and self._since_full + 1 < self.redetect_every:
            found, others = self._search_locally(frame, self._box)
            if found is not None:
                method = "track"
                self._since_full += 1
        waiting_to_forget = self._idle is not None and bool(self._idle[1]) and self._forgotten(now)
        if found is None and self._box is None and not cut and not waiting_to_forget and self._nothing_moved(frame, thumb):
            self._since_full += 1
            self._thumb = thumb
            rejected = len(self._idle[1]) if self._idle else 0
            return TrackStep(None, None, "none", self._faces_in_view, rejected, cut, 0.0,
                             (time.perf_counter() - started) * 1000)
        if found is None:
            full_started = time.perf_counter()
            faces = self.detector.detect(frame, color=self.color)
            detect_ms = (time.perf_counter() - full_started) * 1000
            self._faces_in_view = len(faces)
            self._since_full = 0
            found = self._choose(frame, faces, now)
            others = len(faces) - (found is not None)
            method = "full" if found is not None else "none"
            self._idle = None if found is not None else (thumb, faces)
        if found is not None:
            self._accept(frame, found, now, fresh=method == "full")
        else:
            self._box = None
        self._thumb = thumb
        track_ms = (time.perf_counter() - started) * 1000 - detect_ms
        return TrackStep(found, self.identity if found is not None else None, method, self._faces_in_view, others, cut,
                         detect_ms, track_ms)

    # --- steps ------------------------------------------------------------------------------------------------------
    def _search_locally(self, frame: np.ndarray, box: FaceBox) -> tuple[FaceBox | None, int]:
        side = self.SEARCH_SCALE * max(box.w, box.h)
        cx, cy = box.center
        region = (int(cx - side / 2), int(cy - side / 2), int(side), int(side))
        candidates = self.local.detect_region(frame, region, color=self.color)  # type: ignore[union-attr]
        matching = [c for c in candidates if continues(box, c)]
        if not matching:
            return None, len(candidates)
        best = max(matching, key=lambda c: c.score)
        return best, len(candidates) - 1

    def _choose(self, frame: np.ndarray, faces: list[FaceBox], now: float) -> FaceBox | None:
        if not faces:
            return None
        if self._appearance is None or self._forgotten(now):
            self._identity += 1  # first face of the video, or the patient left long ago: a new patient
            self._appearance = None
            return faces[0]  # largest first
        reference = self._box or self._last_box
        if reference is not None and not self._cut_since_seen:
            near = [f for f in faces if continues(reference, f, max_shift=1.0, max_resize=2.0)]
            if near:
                return max(near, key=lambda f: f.score)
        looks = [(self._appearance.similarity(appearance_of(frame, f, self.color)), f) for f in faces]
        similarity, best = max(looks, key=lambda pair: pair[0])
        return best if similarity >= self.SAME_PERSON else None

    def _forgotten(self, now: float) -> bool:
        return self._last_seen_t is not None and now - self._last_seen_t > self.forget_after_s

    def _accept(self, frame: np.ndarray, box: FaceBox, now: float, fresh: bool) -> None:
        self._box = self._last_box = box
        self._last_seen_t = now
        self._cut_since_seen = False
        self._since_appearance += 1
        if self._appearance is None or fresh or self._since_appearance >= self.APPEARANCE_EVERY:
            current = appearance_of(frame, box, self.color)
            # Slow blend: expressions change the face; the patient's model should follow lighting, not one frame.
            self._appearance = current if self._appearance is None else self._appearance.blend(current, 0.2)
            self._since_appearance = 0

    def _nothing_moved(self, frame: np.ndarray, thumb: np.ndarray) -> bool:
        """Whether the last fruitless whole-frame detection still holds: nothing changed outside the faces it saw, and
        it is less than `redetect_every` frames old."""
        if self._idle is None or self._since_full + 1 >= self.redetect_every:
            return False
        idle_thumb, rejected = self._idle
        if thumb.shape != idle_thumb.shape:
            return False
        change = np.abs(thumb - idle_thumb)
        height, width = frame.shape[:2]
        sx, sy = THUMB_SIZE[0] / width, THUMB_SIZE[1] / height
        for box in rejected:  # a rejected face may talk and sway: only a change elsewhere calls for a new search
            pad_x, pad_y = box.w / 2, box.h / 2
            change[max(0, int((box.y - pad_y) * sy)) : int(np.ceil((box.y + box.h + pad_y) * sy)),
                   max(0, int((box.x - pad_x) * sx)) : int(np.ceil((box.x + box.w + pad_x) * sx))] = 0
        return float(change.max()) <= self.STILL_THRESHOLD

    def _thumbnail(self, frame: np.ndarray) -> np.ndarray:
        step = max(1, min(frame.shape[0] // (4 * THUMB_SIZE[1]), frame.shape[1] // (4 * THUMB_SIZE[0])))
        small = cv2.resize(frame[::step, ::step], THUMB_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)
        return small.mean(axis=2) if small.ndim == 3 else small

    def _check_cut(self, frame: np.ndarray, thumb: np.ndarray) -> bool:
        """A cut: the picture outside the patient's face changed at once. Only checked while the patient is in view
        or just lost; a person moving in a static room changes a small part of the thumbnail."""
        if self._thumb is None:
            return False
        if thumb.shape != self._thumb.shape:
            return True
        change = np.abs(thumb - self._thumb)
        box = self._box or self._last_box
        if box is not None:
            height, width = frame.shape[:2]
            sx, sy = THUMB_SIZE[0] / width, THUMB_SIZE[1] / height
            mask = np.ones_like(change, dtype=bool)
            mask[int(box.y * sy) : int(np.ceil((box.y + box.h) * sy)), int(box.x * sx) : int(np.ceil((box.x + box.w) * sx))] = False
            change = change[mask] if mask.any() else change
        return float(change.mean()) > self.CUT_THRESHOLD
