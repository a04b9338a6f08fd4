"""Pure analytics over emotion readings: no Streamlit, no database. Everything the dashboard, review, progress and
report pages compute lives here so it can be unit-tested on plain numbers.

A readings frame is a pandas DataFrame with one row per reading, oldest first, and the columns
`captured_at` (timezone-aware), `t` (seconds since the session start), the seven `fer.labels.LABELS`, and `dominant`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from fer.labels import LABELS, NEGATIVE_LABELS, POSITIVE_LABELS
from store.models import Reading

FRAME_COLUMNS: tuple[str, ...] = ("captured_at", "t", *LABELS, "dominant")


# --- building frames ----------------------------------------------------------------------------------------------


def empty_frame() -> pd.DataFrame:
    frame = pd.DataFrame({name: pd.Series(dtype="float64") for name in ("t", *LABELS)})
    frame.insert(0, "captured_at", pd.Series(dtype="datetime64[ns, UTC]"))
    frame["dominant"] = pd.Series(dtype="object")
    return frame


def readings_frame(readings: Sequence[Reading], start: datetime | None = None) -> pd.DataFrame:
    """One row per reading, sorted by capture time. `t` counts seconds from `start` (the session start), or from the
    first reading when there is no start or the first reading is earlier (readings imported from a recorded video, a
    device clock running ahead): `t` is never negative."""
    if not readings:
        return empty_frame()
    probabilities = np.asarray([r.probabilities for r in readings], dtype="float64")
    frame = pd.DataFrame(probabilities, columns=list(LABELS))
    frame.insert(0, "captured_at", pd.to_datetime([r.captured_at for r in readings], utc=True))
    frame = frame.sort_values("captured_at", kind="stable").reset_index(drop=True)
    first = frame["captured_at"].iloc[0]
    origin = first if start is None else min(pd.Timestamp(start).tz_convert("UTC"), first)
    frame.insert(1, "t", (frame["captured_at"] - origin).dt.total_seconds())
    frame["dominant"] = dominant_labels(frame)
    return frame


def append_readings(frame: pd.DataFrame, readings: Sequence[Reading], start: datetime | None = None) -> pd.DataFrame:
    """The frame with `readings` added, keeping the same time origin (used by the live dashboard's cursor polling)."""
    if not readings:
        return frame
    if frame.empty:
        return readings_frame(readings, start)
    origin = pd.Timestamp(start) if start is not None else frame["captured_at"].iloc[0] - pd.Timedelta(seconds=frame["t"].iloc[0])
    addition = readings_frame(readings, origin.to_pydatetime())
    return pd.concat([frame, addition], ignore_index=True).sort_values("captured_at", kind="stable").reset_index(drop=True)


def dominant_labels(frame: pd.DataFrame) -> pd.Series:
    if frame.empty:
        return pd.Series(dtype="object")
    return frame[list(LABELS)].idxmax(axis=1)


# --- smoothing and valence -----------------------------------------------------------------------------------------


def smooth(frame: pd.DataFrame, window_s: float = 5.0) -> pd.DataFrame:
    """Centred moving average of the seven probabilities over a time window (readings arrive irregularly, so the
    window is in seconds, not rows). Rows are renormalised to sum to 1 and `dominant` is recomputed."""
    if frame.empty or window_s <= 0:
        return frame.copy()
    indexed = frame.set_index("captured_at")[list(LABELS)]
    rolled = indexed.rolling(pd.Timedelta(seconds=window_s), center=True, min_periods=1).mean()
    totals = rolled.sum(axis=1).replace(0.0, 1.0)
    rolled = rolled.div(totals, axis=0)
    smoothed = frame.copy()
    smoothed[list(LABELS)] = rolled.to_numpy()
    smoothed["dominant"] = dominant_labels(smoothed)
    return smoothed


def valence(frame: pd.DataFrame) -> pd.Series:
    """Per reading: P(positive) - P(negative), in [-1, 1]. Surprise and neutral count as neither."""
    if frame.empty:
        return pd.Series(dtype="float64")
    return frame[list(POSITIVE_LABELS)].sum(axis=1) - frame[list(NEGATIVE_LABELS)].sum(axis=1)


def valence_index(frame: pd.DataFrame) -> float | None:
    """Mean valence over the session; None without readings."""
    if frame.empty:
        return None
    return float(valence(frame).mean())


# --- distributions ------------------------------------------------------------------------------------------------


def dominant_distribution(frame: pd.DataFrame) -> dict[str, float]:
    """Share of readings in which each emotion was dominant (sums to 1; all zeros without readings)."""
    if frame.empty:
        return {label: 0.0 for label in LABELS}
    counts = frame["dominant"].value_counts()
    total = float(len(frame))
    return {label: float(counts.get(label, 0)) / total for label in LABELS}


def mean_probabilities(frame: pd.DataFrame) -> dict[str, float]:
    if frame.empty:
        return {label: 0.0 for label in LABELS}
    means = frame[list(LABELS)].mean()
    return {label: float(means[label]) for label in LABELS}


def last_window(frame: pd.DataFrame, seconds: float = 60.0, now: datetime | None = None) -> pd.DataFrame:
    """Readings in the `seconds` before `now` (default: the newest reading), e.g. the dashboard's last minute."""
    if frame.empty:
        return frame
    end = pd.Timestamp(now).tz_convert("UTC") if now is not None else frame["captured_at"].iloc[-1]
    return frame[frame["captured_at"] > end - pd.Timedelta(seconds=seconds)]


# --- dominant band and peaks -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """A stretch of time during which one emotion stayed dominant."""

    label: str
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def dominant_segments(frame: pd.DataFrame) -> list[Segment]:
    """Run-length encoding of the dominant emotion; each segment ends where the next begins (the last at its last reading)."""
    if frame.empty:
        return []
    times = frame["t"].to_numpy()
    labels = frame["dominant"].to_numpy()
    segments: list[Segment] = []
    start = 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            end_time = times[i] if i < len(labels) else times[i - 1]
            segments.append(Segment(str(labels[start]), float(times[start]), float(end_time)))
            start = i
    return segments


@dataclass(frozen=True)
class Peak:
    label: str
    t: float  # seconds since session start
    captured_at: datetime
    value: float


def find_peaks(
    frame: pd.DataFrame,
    labels: Iterable[str] = tuple(label for label in LABELS if label != "neutral"),
    min_height: float = 0.5,
    min_distance_s: float = 10.0,
    limit: int = 10,
) -> list[Peak]:
    """Local maxima of each emotion's probability (use a smoothed frame) that reach `min_height`; within
    `min_distance_s` of a higher peak of the same emotion only the higher one is kept. Highest first, at most `limit`."""
    if frame.empty:
        return []
    times = frame["t"].to_numpy()
    found: list[Peak] = []
    for label in labels:
        values = frame[label].to_numpy()
        padded = np.concatenate(([-np.inf], values, [-np.inf]))
        # A plateau counts once: >= the previous value and > the next one.
        candidates = np.where((values >= padded[:-2]) & (values > padded[2:]) & (values >= min_height))[0]
        kept: list[int] = []
        for index in sorted(candidates, key=lambda i: -values[i]):
            if all(abs(times[index] - times[other]) >= min_distance_s for other in kept):
                kept.append(int(index))
        found += [Peak(label, float(times[i]), frame["captured_at"].iloc[i].to_pydatetime(), float(values[i])) for i in kept]
    return sorted(found, key=lambda p: -p.value)[:limit]


# --- baseline ---------------------------------------------------------------------------------------------------------


def baseline_from(frame: pd.DataFrame) -> dict[str, float] | None:
    """A neutral baseline (calibration): the mean probabilities of a calm stretch, e.g. a session's first minute."""
    if frame.empty:
        return None
    return mean_probabilities(frame)


def change_from_baseline(frame: pd.DataFrame, baseline: dict[str, float]) -> pd.DataFrame:
    """Per reading and emotion: probability minus the baseline's (positive: more than at rest)."""
    changed = frame.copy()
    for label in LABELS:
        changed[label] = frame[label] - baseline.get(label, 0.0)
    return changed


# --- progress across sessions ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trend:
    """Least-squares line through values indexed 0..n-1 (e.g. one value per session)."""

    slope: float  # change per session
    intercept: float
    points: int

    @property
    def direction(self) -> str:
        if self.points < 2 or abs(self.slope) < 1e-3:
            return "stable"
        return "rising" if self.slope > 0 else "falling"

    def at(self, index: float) -> float:
        return self.intercept + self.slope * index


def trend(values: Sequence[float]) -> Trend:
    points = len(values)
    if points == 0:
        return Trend(0.0, 0.0, 0)
    if points == 1:
        return Trend(0.0, float(values[0]), 1)
    x = np.arange(points, dtype="float64")
    slope, intercept = np.polyfit(x, np.asarray(values, dtype="float64"), 1)
    return Trend(float(slope), float(intercept), points)


@dataclass(frozen=True)
class SessionPoint:
    """One session on the progress chart: when it happened and its mean emotion proportions."""

    session_id: object
    started_at: datetime | None
    readings: int
    proportions: dict[str, float]  # label -> mean probability
    valence: float


def session_point(session_id: object, started_at: datetime | None, readings: int, mean_probs: Sequence[float]) -> SessionPoint:
    proportions = {label: float(value) for label, value in zip(LABELS, mean_probs)}
    positive = sum(proportions[label] for label in POSITIVE_LABELS)
    negative = sum(proportions[label] for label in NEGATIVE_LABELS)
    return SessionPoint(session_id, started_at, readings, proportions, positive - negative)


def progress_frame(points: Sequence[SessionPoint]) -> pd.DataFrame:
    """One row per session with readings, oldest first: `session` (1-based number), `started_at`, the 7 labels, `valence`."""
    rows = [p for p in points if p.readings > 0]
    rows.sort(key=lambda p: (p.started_at is None, p.started_at))
    frame = pd.DataFrame(
        [{"session": i + 1, "session_id": p.session_id, "started_at": p.started_at, **p.proportions, "valence": p.valence} for i, p in enumerate(rows)],
        columns=["session", "session_id", "started_at", *LABELS, "valence"],
    )
    return frame


def progress_trends(frame: pd.DataFrame) -> dict[str, Trend]:
    """A trend per emotion and for valence across the sessions of `progress_frame`."""
    return {name: trend(frame[name].tolist()) for name in (*LABELS, "valence")}


# --- summary ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionSummary:
    readings: int
    duration_s: float
    dominant: str | None  # the emotion dominant most often
    valence_index: float | None
    distribution: dict[str, float] = field(default_factory=dict)
    mean_probabilities: dict[str, float] = field(default_factory=dict)
    peaks: list[Peak] = field(default_factory=list)


def summarize(frame: pd.DataFrame, smoothing_s: float = 5.0) -> SessionSummary:
    if frame.empty:
        return SessionSummary(0, 0.0, None, None, dominant_distribution(frame), mean_probabilities(frame), [])
    distribution = dominant_distribution(frame)
    return SessionSummary(
        readings=len(frame),
        duration_s=float(frame["t"].iloc[-1] - frame["t"].iloc[0]),
        dominant=max(distribution, key=distribution.__getitem__),
        valence_index=valence_index(frame),
        distribution=distribution,
        mean_probabilities=mean_probabilities(frame),
        peaks=find_peaks(smooth(frame, smoothing_s)),
    )


def downsample(frame: pd.DataFrame, max_points: int = 1500) -> pd.DataFrame:
    """At most `max_points` rows, averaging neighbouring readings (keeps a long session's chart light in the browser)."""
    if len(frame) <= max_points:
        return frame
    bins = np.arange(len(frame)) * max_points // len(frame)
    grouped = frame.groupby(bins)
    reduced = grouped[["t", *LABELS]].mean()
    reduced.insert(0, "captured_at", grouped["captured_at"].first().to_numpy())
    reduced["dominant"] = dominant_labels(reduced)
    return reduced.reset_index(drop=True)
