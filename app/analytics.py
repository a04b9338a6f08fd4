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

from fer.labels import LABELS
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


# Published valence and arousal of the seven category words: Warriner, Kuperman & Brysbaert (2013), "Norms of valence,
# arousal, and dominance for 13,915 English lemmas", Behavior Research Methods 45(4), 1191-1207,
# doi:10.3758/s13428-012-0314-x; columns V.Mean.Sum / A.Mean.Sum (1 = unhappy/calm ... 9 = happy/excited) of the
# words exactly as the classes are named. The two dimensions are those of Russell's (1980) circumplex of affect.
WARRINER_2013_RATINGS: dict[str, tuple[float, float]] = {  # label -> (valence, arousal), 1..9
    "angry": (2.53, 6.20),
    "disgust": (3.32, 5.00),
    "fear": (2.93, 6.14),
    "happy": (8.47, 6.05),
    "sad": (2.10, 3.49),
    "surprise": (7.44, 6.57),
    "neutral": (5.50, 3.45),
}


def _centred_on_neutral(index: int) -> dict[str, float]:
    # Centred on the rating of "neutral" (so a neutral face scores 0 by definition, not +0.13) and divided by 4, half
    # the width of the 1..9 scale, so every weight lies in [-1, 1].
    zero = WARRINER_2013_RATINGS["neutral"][index]
    return {label: round((ratings[index] - zero) / 4.0, 4) for label, ratings in WARRINER_2013_RATINGS.items()}


VALENCE_WEIGHTS: dict[str, float] = _centred_on_neutral(0)
AROUSAL_WEIGHTS: dict[str, float] = _centred_on_neutral(1)


def _weighted(frame: pd.DataFrame, weights: dict[str, float]) -> pd.Series:
    if frame.empty:
        return pd.Series(dtype="float64")
    values = frame[list(LABELS)].to_numpy(dtype="float64") @ np.asarray([weights[label] for label in LABELS])
    return pd.Series(values, index=frame.index, dtype="float64")


def valence(frame: pd.DataFrame) -> pd.Series:
    """Per reading: the expected valence sum_k P(k) * v(k) with v from VALENCE_WEIGHTS (Warriner et al. 2013, centred
    on "neutral"); -0.85 (all sad) ... +0.74 (all happy), 0 for a neutral face."""
    return _weighted(frame, VALENCE_WEIGHTS)


def arousal(frame: pd.DataFrame) -> pd.Series:
    """Per reading: the expected arousal with AROUSAL_WEIGHTS; 0 calm as a neutral face ... +0.78 (all surprise)."""
    return _weighted(frame, AROUSAL_WEIGHTS)


def valence_index(frame: pd.DataFrame) -> float | None:
    """Mean valence over the session; None without readings."""
    if frame.empty:
        return None
    return float(valence(frame).mean())


def arousal_index(frame: pd.DataFrame) -> float | None:
    if frame.empty:
        return None
    return float(arousal(frame).mean())


def mean_valence(proportions: dict[str, float]) -> float:
    """Valence of mean probabilities (the expected valence is linear, so this equals the mean of per-reading valence)."""
    return float(sum(proportions.get(label, 0.0) * VALENCE_WEIGHTS[label] for label in LABELS))


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


PEAK_HEIGHT = 0.5  # an emotion must reach at least this probability ...
PEAK_PROMINENCE = 0.2  # ... rise at least this much above its surroundings ...
PEAK_MIN_DURATION_S = 1.0  # ... and stay at or above the height this long (one stray frame is not a peak)


@dataclass(frozen=True)
class Peak:
    """An excursion of one emotion: a stretch where its probability stayed at or above the height, standing out from
    its surroundings by at least the prominence. `t`/`value` are its highest reading."""

    label: str
    t: float  # seconds since session start of the highest reading
    captured_at: datetime
    value: float
    start_s: float = 0.0
    end_s: float = 0.0
    prominence: float = 0.0

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def _runs_at_or_above(values: np.ndarray, height: float) -> list[tuple[int, int]]:
    """[first, last] index pairs of the maximal runs with values >= height."""
    above = values >= height
    runs: list[tuple[int, int]] = []
    start: int | None = None
    for i, flag in enumerate(above):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            runs.append((start, i - 1))
            start = None
    if start is not None:
        runs.append((start, len(values) - 1))
    return runs


def find_peaks(
    frame: pd.DataFrame,
    labels: Iterable[str] = tuple(label for label in LABELS if label != "neutral"),
    height: float = PEAK_HEIGHT,
    prominence: float = PEAK_PROMINENCE,
    min_duration_s: float = PEAK_MIN_DURATION_S,
    limit: int = 10,
) -> list[Peak]:
    """Peaks found on the readings themselves (pass the raw frame: smoothing would flatten short excursions).

    For each emotion: (1) runs of consecutive readings with probability >= `height`; (2) neighbouring runs are one
    peak when the lowest value between them stays above the lower run's maximum minus `prominence` (a shallow dip
    does not split a peak); (3) a peak's prominence is its maximum minus the higher of the lowest values on either
    side (down to the neighbouring peak or the session edge; a side without readings does not count, and a run with
    no readings on either side stands out from nothing and is no peak); (4) kept when prominence >= `prominence` and
    the run lasts >= `min_duration_s` (first to last reading at or above the height). Highest first, at most `limit`."""
    if frame.empty:
        return []
    times = frame["t"].to_numpy(dtype="float64")
    found: list[Peak] = []
    for label in labels:
        values = frame[label].to_numpy(dtype="float64")
        runs = _runs_at_or_above(values, height)
        merged: list[tuple[int, int]] = []
        for run in runs:
            if merged:
                previous = merged[-1]
                dip = values[previous[1] + 1 : run[0]].min()
                lower_top = min(values[previous[0] : previous[1] + 1].max(), values[run[0] : run[1] + 1].max())
                if dip > lower_top - prominence:
                    merged[-1] = (previous[0], run[1])
                    continue
            merged.append(run)
        for index, (first, last) in enumerate(merged):
            left_edge = merged[index - 1][1] + 1 if index > 0 else 0
            right_edge = merged[index + 1][0] if index + 1 < len(merged) else len(values)
            sides = [side.min() for side in (values[left_edge:first], values[last + 1 : right_edge]) if side.size]
            if not sides:
                continue
            top = first + int(np.argmax(values[first : last + 1]))
            standing = float(values[top] - max(sides))
            if standing < prominence or times[last] - times[first] < min_duration_s:
                continue
            found.append(
                Peak(label, float(times[top]), frame["captured_at"].iloc[top].to_pydatetime(), float(values[top]), float(times[first]), float(times[last]), standing)
            )
    return sorted(found, key=lambda p: (-p.value, p.t))[:limit]


# --- baseline ---------------------------------------------------------------------------------------------------------

CALIBRATION_SECONDS = 60.0
MIN_BASELINE_READINGS = 10


@dataclass(frozen=True)
class Baseline:
    """A neutral baseline (calibration), or why none could be computed (`values` None, `problem` says why)."""

    values: dict[str, float] | None
    label: str
    problem: str | None = None


def baseline_from(frame: pd.DataFrame) -> dict[str, float] | None:
    """The mean probabilities of a calm stretch (None without readings)."""
    if frame.empty:
        return None
    return mean_probabilities(frame)


def first_minute_baseline(frame: pd.DataFrame, seconds: float = CALIBRATION_SECONDS) -> Baseline:
    """The first `seconds` of the session as the baseline. Refused when the session's readings do not run past that
    minute: the "first minute" would then be the whole session and every change against it zero by construction."""
    label = f"first {seconds:.0f} s of this session"
    if frame.empty:
        return Baseline(None, label, "This session has no readings, so there is no baseline.")
    first, last = float(frame["t"].iloc[0]), float(frame["t"].iloc[-1])
    if last - first <= seconds:
        return Baseline(None, label, f"No first-minute baseline: the readings cover only {last - first:.0f} s, so the first minute would be the whole session. Choose a calibration session instead.")
    calm = frame[frame["t"] <= first + seconds]
    if len(calm) < MIN_BASELINE_READINGS:
        return Baseline(None, label, f"No first-minute baseline: only {len(calm)} readings in the first minute (at least {MIN_BASELINE_READINGS} are needed).")
    return Baseline(mean_probabilities(calm), label)


def session_baseline(frame: pd.DataFrame, label: str) -> Baseline:
    """A whole calibration session as the baseline."""
    if len(frame) < MIN_BASELINE_READINGS:
        return Baseline(None, label, f"No baseline: the calibration session has {len(frame)} readings (at least {MIN_BASELINE_READINGS} are needed).")
    return Baseline(mean_probabilities(frame), label)


def change_from_baseline(frame: pd.DataFrame, baseline: dict[str, float]) -> pd.DataFrame:
    """Per reading and emotion: probability minus the baseline's (positive: more than at rest)."""
    changed = frame.copy()
    for label in LABELS:
        changed[label] = frame[label] - baseline.get(label, 0.0)
    return changed


# --- progress across sessions ----------------------------------------------------------------------------------------

BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_BLOCK_S = 10.0  # neighbouring readings are not independent: resample 10-second blocks, not single readings
CONFIDENCE = 0.95
# Two-sided 97.5 % quantiles of Student's t for 1..30 degrees of freedom (beyond: 1.96 + 2.5/df, within 0.002).
_T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
          2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t_quantile_975(df: int) -> float:
    return _T_975[df - 1] if df <= len(_T_975) else 1.96 + 2.5 / df


@dataclass(frozen=True)
class Trend:
    """Least-squares line through values indexed 0..n-1 (one value per session), with the 95 % confidence interval of
    its slope (t distribution, n-2 degrees of freedom). A trend is reported only when that interval excludes zero."""

    slope: float  # change per session
    intercept: float
    points: int
    slope_low: float | None = None
    slope_high: float | None = None

    @property
    def significant(self) -> bool:
        return self.slope_low is not None and self.slope_high is not None and (self.slope_low > 0 or self.slope_high < 0)

    @property
    def direction(self) -> str:
        if self.points < 3:
            return "too few sessions"
        if not self.significant:
            return "no clear trend"
        return "rising" if self.slope > 0 else "falling"

    def at(self, index: float) -> float:
        return self.intercept + self.slope * index


FLAT_TOLERANCE = 1e-12  # relative spread below which a series of values counts as constant


def trend(values: Sequence[float]) -> Trend:
    points = len(values)
    if points == 0:
        return Trend(0.0, 0.0, 0)
    if points == 1:
        return Trend(0.0, float(values[0]), 1)
    x = np.arange(points, dtype="float64")
    y = np.asarray(values, dtype="float64")
    if points >= 3 and np.ptp(y) <= FLAT_TOLERANCE * max(1.0, float(np.abs(y).max())):
        # Equal values: least squares leaves a slope of rounding error (1e-18) with zero residuals, an interval of zero
        # width that "excludes" zero, and a flat series would be reported as rising or falling.
        return Trend(0.0, float(y.mean()), points, 0.0, 0.0)
    slope, intercept = np.polyfit(x, y, 1)
    if points < 3:
        return Trend(float(slope), float(intercept), points)
    residuals = y - (intercept + slope * x)
    standard_error = float(np.sqrt((residuals @ residuals) / (points - 2) / ((x - x.mean()) @ (x - x.mean()))))
    margin = t_quantile_975(points - 2) * standard_error
    return Trend(float(slope), float(intercept), points, float(slope - margin), float(slope + margin))


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def block_bootstrap(frame: pd.DataFrame, statistic_columns: dict[str, pd.Series], resamples: int = BOOTSTRAP_RESAMPLES, block_s: float = BOOTSTRAP_BLOCK_S, seed: int = 0) -> dict[str, Interval]:
    """95 % percentile intervals of the session means of each series, by resampling `block_s`-second blocks of
    readings with replacement (a block bootstrap: readings a fraction of a second apart are not independent, and
    resampling single readings would give intervals far too narrow). Deterministic (`seed`)."""
    if frame.empty:
        return {}
    blocks = np.floor((frame["t"].to_numpy(dtype="float64") - float(frame["t"].iloc[0])) / block_s).astype(int)
    _, block_index = np.unique(blocks, return_inverse=True)
    count = int(block_index.max()) + 1
    sizes = np.bincount(block_index, minlength=count).astype("float64")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, count, size=(resamples, count))
    weights = np.stack([np.bincount(row, minlength=count) for row in draws]).astype("float64")  # how often each block
    found: dict[str, Interval] = {}
    tail = (1 - CONFIDENCE) / 2 * 100
    for name, series in statistic_columns.items():
        sums = np.bincount(block_index, weights=series.to_numpy(dtype="float64"), minlength=count)
        means = (weights @ sums) / (weights @ sizes)
        found[name] = Interval(float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail)))
    return found


@dataclass(frozen=True)
class SessionPoint:
    """One session on the progress chart: when it happened, its mean emotion proportions and valence, and their
    bootstrap intervals (empty when not computed)."""

    session_id: object
    started_at: datetime | None
    readings: int
    proportions: dict[str, float]  # label -> mean probability
    valence: float
    intervals: dict[str, Interval] = field(default_factory=dict)  # label or "valence" -> 95 % interval


def session_point(session_id: object, started_at: datetime | None, readings: int, mean_probs: Sequence[float]) -> SessionPoint:
    proportions = {label: float(value) for label, value in zip(LABELS, mean_probs)}
    return SessionPoint(session_id, started_at, readings, proportions, mean_valence(proportions))


def session_point_from_frame(session_id: object, started_at: datetime | None, frame: pd.DataFrame, seed: int = 0) -> SessionPoint:
    """A session's point with block-bootstrap intervals for each proportion and for valence."""
    proportions = mean_probabilities(frame)
    columns = {label: frame[label] for label in LABELS} | {"valence": valence(frame)}
    intervals = block_bootstrap(frame, columns, seed=seed) if not frame.empty else {}
    return SessionPoint(session_id, started_at, len(frame), proportions, mean_valence(proportions), intervals)


def progress_frame(points: Sequence[SessionPoint]) -> pd.DataFrame:
    """One row per session with readings, oldest first: `session` (1-based number), `started_at`, the 7 labels,
    `valence`, and `<name>_low` / `<name>_high` bootstrap bounds (NaN when not computed)."""
    rows = [p for p in points if p.readings > 0]
    rows.sort(key=lambda p: (p.started_at is None, p.started_at))
    names = (*LABELS, "valence")
    bounds = [f"{name}_{side}" for name in names for side in ("low", "high")]
    records = []
    for i, p in enumerate(rows):
        record = {"session": i + 1, "session_id": p.session_id, "started_at": p.started_at, "readings": p.readings, **p.proportions, "valence": p.valence}
        for name in names:
            interval = p.intervals.get(name)
            record[f"{name}_low"] = interval.low if interval else float("nan")
            record[f"{name}_high"] = interval.high if interval else float("nan")
        records.append(record)
    return pd.DataFrame(records, columns=["session", "session_id", "started_at", "readings", *names, *bounds])


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
    arousal_index: float | None = None
    distribution: dict[str, float] = field(default_factory=dict)
    mean_probabilities: dict[str, float] = field(default_factory=dict)
    peaks: list[Peak] = field(default_factory=list)


def summarize(frame: pd.DataFrame) -> SessionSummary:
    """The review's numbers on the raw readings (the smoothing window changes only what the chart draws)."""
    if frame.empty:
        return SessionSummary(0, 0.0, None, None, None, dominant_distribution(frame), mean_probabilities(frame), [])
    distribution = dominant_distribution(frame)
    return SessionSummary(
        readings=len(frame),
        duration_s=float(frame["t"].iloc[-1] - frame["t"].iloc[0]),
        dominant=max(distribution, key=distribution.__getitem__),
        valence_index=valence_index(frame),
        arousal_index=arousal_index(frame),
        distribution=distribution,
        mean_probabilities=mean_probabilities(frame),
        peaks=find_peaks(frame),  # on the readings: smoothing is for the eye (the chart), not for finding peaks
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
