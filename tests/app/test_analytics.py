"""app.analytics: the numbers behind the dashboard, review, progress and report, on hand-made readings."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from app import analytics
from fer.labels import LABELS
from store.models import Reading

SESSION = uuid.uuid4()
T0 = datetime(2026, 1, 5, 10, 0, 0, tzinfo=timezone.utc)


def one_hot(label: str, weight: float = 1.0) -> tuple[float, ...]:
    """`weight` on `label`, the rest spread evenly over the other six."""
    rest = (1.0 - weight) / 6
    return tuple(weight if name == label else rest for name in LABELS)


def reading(seconds: float, probabilities: tuple[float, ...]) -> Reading:
    return Reading(SESSION, T0 + timedelta(seconds=seconds), probabilities, "pi")


def frame_of(*pairs: tuple[float, str]) -> pd.DataFrame:
    return analytics.readings_frame([reading(s, one_hot(label)) for s, label in pairs], start=T0)


def test_readings_frame_sorts_by_time_and_counts_seconds_from_the_session_start():
    frame = analytics.readings_frame([reading(2.5, one_hot("sad")), reading(1.0, one_hot("happy"))], start=T0)
    assert list(frame.columns) == list(analytics.FRAME_COLUMNS)
    assert frame["t"].tolist() == [1.0, 2.5]
    assert frame["dominant"].tolist() == ["happy", "sad"]


def test_readings_frame_keeps_milliseconds():
    frame = analytics.readings_frame([reading(0.0, one_hot("happy")), reading(0.125, one_hot("happy"))], start=T0)
    assert frame["t"].tolist() == [0.0, 0.125]


def test_an_empty_frame_has_the_columns_and_every_function_copes_with_it():
    frame = analytics.readings_frame([])
    assert list(frame.columns) == list(analytics.FRAME_COLUMNS)
    assert analytics.smooth(frame).empty
    assert analytics.valence_index(frame) is None
    assert analytics.dominant_distribution(frame) == {label: 0.0 for label in LABELS}
    assert analytics.dominant_segments(frame) == []
    assert analytics.find_peaks(frame) == []
    summary = analytics.summarize(frame)
    assert summary.readings == 0 and summary.dominant is None


def test_append_readings_keeps_the_time_origin_of_the_first_batch():
    frame = analytics.readings_frame([reading(1.0, one_hot("happy"))], start=T0)
    frame = analytics.append_readings(frame, [reading(3.0, one_hot("sad"))])
    assert frame["t"].tolist() == [1.0, 3.0]
    assert frame["dominant"].tolist() == ["happy", "sad"]


def test_smoothing_averages_over_a_time_window_and_rows_still_sum_to_one():
    # A one-reading spike of anger in a calm run is damped by a 5 s window, not kept at full height.
    pairs = [(float(s), "neutral") for s in range(10)]
    pairs[5] = (5.0, "angry")
    smoothed = analytics.smooth(frame_of(*pairs), window_s=5.0)
    assert smoothed["angry"].max() < 0.5
    assert smoothed[list(LABELS)].sum(axis=1).round(9).eq(1.0).all()
    assert set(smoothed["dominant"]) == {"neutral"}


def test_smoothing_with_a_zero_window_changes_nothing():
    frame = frame_of((0, "happy"), (1, "sad"))
    pd.testing.assert_frame_equal(analytics.smooth(frame, 0), frame)


def test_valence_is_positive_minus_negative_probability():
    frame = analytics.readings_frame(
        [reading(0, one_hot("happy")), reading(1, one_hot("sad")), reading(2, one_hot("surprise")), reading(3, one_hot("neutral"))],
        start=T0,
    )
    values = analytics.valence(frame).round(9).tolist()
    assert values == [1.0, -1.0, 0.0, 0.0]
    assert analytics.valence_index(frame) == pytest.approx(0.0)


def test_valence_counts_every_negative_emotion():
    mixed = (0.25, 0.1, 0.1, 0.3, 0.05, 0.1, 0.1)  # angry, disgust, fear, happy, sad, surprise, neutral
    frame = analytics.readings_frame([reading(0, mixed)], start=T0)
    assert analytics.valence_index(frame) == pytest.approx(0.3 - (0.25 + 0.1 + 0.1 + 0.05))


def test_dominant_distribution_is_the_share_of_readings_per_emotion():
    frame = frame_of((0, "happy"), (1, "happy"), (2, "sad"), (3, "neutral"))
    distribution = analytics.dominant_distribution(frame)
    assert distribution["happy"] == 0.5 and distribution["sad"] == 0.25 and distribution["angry"] == 0.0
    assert sum(distribution.values()) == pytest.approx(1.0)


def test_last_window_keeps_only_the_last_minute_before_the_newest_reading():
    frame = frame_of((0, "sad"), (30, "sad"), (70, "happy"), (100, "happy"))
    window = analytics.last_window(frame, 60)
    assert window["t"].tolist() == [70.0, 100.0]


def test_dominant_segments_are_runs_of_the_same_emotion():
    frame = frame_of((0, "neutral"), (1, "neutral"), (2, "happy"), (3, "happy"), (4, "happy"), (5, "sad"))
    assert analytics.dominant_segments(frame) == [
        analytics.Segment("neutral", 0.0, 2.0),
        analytics.Segment("happy", 2.0, 5.0),
        analytics.Segment("sad", 5.0, 5.0),
    ]


def test_peaks_are_local_maxima_above_the_height_and_far_enough_apart():
    # happy rises to 0.9 at t=10 and 0.8 at t=14 (too close: dropped), and 0.7 at t=40; 0.4 at t=60 is too low.
    heights = {10: 0.9, 12: 0.6, 14: 0.8, 40: 0.7, 60: 0.4}
    readings = [reading(s, one_hot("happy", heights.get(s, 0.1))) for s in range(0, 70, 2)]
    frame = analytics.readings_frame(readings, start=T0)
    peaks = analytics.find_peaks(frame, labels=["happy"], min_height=0.5, min_distance_s=10)
    assert [(p.label, p.t, round(p.value, 3)) for p in peaks] == [("happy", 10.0, 0.9), ("happy", 40.0, 0.7)]
    assert peaks[0].captured_at == T0 + timedelta(seconds=10)


def test_peaks_ignore_neutral_by_default_and_are_sorted_highest_first():
    frame = analytics.readings_frame(
        [reading(0, one_hot("neutral", 0.99)), reading(20, one_hot("sad", 0.6)), reading(40, one_hot("fear", 0.8)), reading(60, one_hot("neutral"))],
        start=T0,
    )
    assert [p.label for p in analytics.find_peaks(frame)] == ["fear", "sad"]


def test_change_from_baseline_subtracts_the_calm_mean():
    calm = frame_of((0, "neutral"), (1, "neutral"))
    baseline = analytics.baseline_from(calm)
    assert baseline["neutral"] == pytest.approx(1.0)
    changed = analytics.change_from_baseline(frame_of((5, "happy")), baseline)
    assert changed["happy"].iloc[0] == pytest.approx(1.0)
    assert changed["neutral"].iloc[0] == pytest.approx(-1.0)
    assert analytics.baseline_from(analytics.readings_frame([])) is None


def test_trend_is_the_least_squares_slope_per_session():
    rising = analytics.trend([0.1, 0.2, 0.3, 0.4])
    assert rising.slope == pytest.approx(0.1) and rising.intercept == pytest.approx(0.1)
    assert rising.direction == "rising" and rising.at(4) == pytest.approx(0.5)
    assert analytics.trend([0.5, 0.3]).direction == "falling"
    assert analytics.trend([0.4, 0.4, 0.4]).direction == "stable"
    assert analytics.trend([0.7]).direction == "stable"
    assert analytics.trend([]).points == 0


def test_progress_frame_orders_sessions_by_date_and_skips_empty_ones():
    day = timedelta(days=7)
    points = [
        analytics.session_point("b", T0 + day, 100, one_hot("happy", 0.7)),
        analytics.session_point("a", T0, 100, one_hot("sad", 0.7)),
        analytics.session_point("empty", T0 + 2 * day, 0, (0.0,) * 7),
    ]
    frame = analytics.progress_frame(points)
    assert frame["session_id"].tolist() == ["a", "b"]
    assert frame["session"].tolist() == [1, 2]
    assert frame["happy"].tolist() == pytest.approx([0.05, 0.7])
    trends = analytics.progress_trends(frame)
    assert trends["happy"].direction == "rising" and trends["sad"].direction == "falling"
    assert trends["valence"].slope > 0


def test_summary_names_the_most_frequent_emotion_duration_valence_and_peaks():
    pairs = [(float(s), "happy") for s in range(0, 20)] + [(float(s), "sad") for s in range(20, 25)]
    summary = analytics.summarize(frame_of(*pairs))
    assert summary.readings == 25 and summary.duration_s == 24.0
    assert summary.dominant == "happy"
    assert summary.valence_index == pytest.approx((20 - 5) / 25)
    assert summary.peaks and summary.peaks[0].label in ("happy", "sad")


def test_downsample_keeps_long_sessions_under_the_point_budget():
    frame = frame_of(*[(float(s), "happy" if s % 2 else "sad") for s in range(3600)])
    reduced = analytics.downsample(frame, max_points=600)
    assert len(reduced) == 600
    assert reduced["t"].iloc[0] == pytest.approx(2.5) and reduced["t"].iloc[-1] == pytest.approx(3596.5)
    assert analytics.downsample(frame.head(10), max_points=600).equals(frame.head(10))


def test_t_never_goes_negative_when_readings_precede_the_session_start():
    frame = analytics.readings_frame([reading(5.0, one_hot("happy")), reading(7.0, one_hot("sad"))], start=T0 + timedelta(seconds=10))
    assert frame["t"].tolist() == [0.0, 2.0]
