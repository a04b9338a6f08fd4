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


def test_valence_and_arousal_use_the_published_ratings_of_the_seven_category_words():
    # Warriner, Kuperman & Brysbaert (2013), V.Mean.Sum / A.Mean.Sum, centred on the word "neutral", divided by 4.
    assert analytics.WARRINER_2013_RATINGS["happy"] == (8.47, 6.05) and analytics.WARRINER_2013_RATINGS["neutral"] == (5.50, 3.45)
    frame = analytics.readings_frame(
        [reading(0, one_hot("happy")), reading(1, one_hot("sad")), reading(2, one_hot("surprise")), reading(3, one_hot("neutral"))],
        start=T0,
    )
    assert analytics.valence(frame).round(4).tolist() == [0.7425, -0.85, 0.485, 0.0]
    assert analytics.arousal(frame).round(4).tolist() == [0.65, 0.01, 0.78, 0.0]
    assert set(analytics.VALENCE_WEIGHTS) == set(LABELS) and all(-1 <= w <= 1 for w in analytics.VALENCE_WEIGHTS.values())


def test_valence_is_the_probability_weighted_mean_of_every_class():
    mixed = (0.25, 0.1, 0.1, 0.3, 0.05, 0.1, 0.1)  # angry, disgust, fear, happy, sad, surprise, neutral
    frame = analytics.readings_frame([reading(0, mixed)], start=T0)
    expected = sum(p * analytics.VALENCE_WEIGHTS[label] for p, label in zip(mixed, LABELS))
    assert analytics.valence_index(frame) == pytest.approx(expected)
    assert analytics.mean_valence(dict(zip(LABELS, mixed))) == pytest.approx(expected)


def test_a_session_of_mostly_happy_readings_scores_positive():
    # Every reading has happy dominant at 0.38 and the rest spread evenly (0.103 each): the old index,
    # P(happy) - P(angry + disgust + fear + sad), called this session unpleasant (-0.03) by construction.
    frame = analytics.readings_frame([reading(s, one_hot("happy", 0.38)) for s in range(60)], start=T0)
    assert set(frame["dominant"]) == {"happy"}
    assert analytics.valence_index(frame) > 0.04
    assert analytics.summarize(frame).valence_index > 0.04


def test_a_neutral_face_scores_zero_valence_and_zero_arousal():
    frame = analytics.readings_frame([reading(0, one_hot("neutral"))], start=T0)
    assert analytics.valence_index(frame) == 0.0 and analytics.arousal_index(frame) == 0.0


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


def excursions(heights: dict[tuple[float, float], float], label: str = "happy", until: float = 100.0, every: float = 0.5) -> pd.DataFrame:
    """Readings every `every` s of a neutral face, with `label` at the given height during each (start, end) stretch."""
    readings = []
    for i in range(int(until / every)):
        s = i * every
        level = next((h for (a, b), h in heights.items() if a <= s <= b), None)
        readings.append(reading(s, one_hot(label, level) if level is not None else one_hot("neutral", 0.94)))
    return analytics.readings_frame(readings, start=T0)


def test_three_happy_excursions_to_0_9_are_found_with_the_default_smoothing():
    # Happy reaches 0.9 for 2 s three times; the old peaks, taken on the 5 s-smoothed series, found none.
    frame = excursions({(10, 12): 0.9, (40, 42): 0.9, (70, 72): 0.9})
    peaks = analytics.summarize(frame).peaks
    assert [(p.label, round(p.value, 3)) for p in peaks] == [("happy", 0.9)] * 3
    assert [p.start_s for p in sorted(peaks, key=lambda p: p.t)] == [10.0, 40.0, 70.0]
    assert all(p.duration_s == 2.0 and p.prominence == pytest.approx(0.9 - 0.01) for p in peaks)
    assert analytics.find_peaks(analytics.smooth(frame, 5.0)) == []  # why peaks are found on the readings


def test_a_peak_needs_the_height_the_prominence_and_the_duration():
    one_frame_spike = {(10, 10): 0.95}  # a single reading: 0 s long
    too_low = {(30, 35): 0.45}
    frame = excursions(one_frame_spike | too_low | {(60, 63): 0.8})
    assert [(p.t, p.value) for p in analytics.find_peaks(frame, labels=["happy"])] == [(60.0, 0.8)]
    assert analytics.find_peaks(frame, labels=["happy"], min_duration_s=0) [0].t == 10.0
    # A stretch that never falls back stands out from nothing around it: no peak.
    flat = analytics.readings_frame([reading(s, one_hot("happy", 0.9)) for s in range(20)], start=T0)
    assert analytics.find_peaks(flat) == []


def test_a_shallow_dip_does_not_split_a_peak_but_a_deep_one_does():
    # Two tops of 0.6 and 0.62 with a dip below the height (0.45) for 1 s: within the prominence of the lower top.
    shallow = excursions({(10, 14): 0.6, (14.5, 15): 0.45, (15.5, 20): 0.62})
    [peak] = analytics.find_peaks(shallow, labels=["happy"])
    assert (peak.start_s, peak.end_s, peak.value) == (10.0, 20.0, 0.62)
    deep = excursions({(10, 14): 0.6, (14.5, 15): 0.1, (15.5, 20): 0.62})
    assert [p.value for p in analytics.find_peaks(deep, labels=["happy"])] == [0.62, 0.6]


def test_peaks_ignore_neutral_by_default_and_are_sorted_highest_first():
    readings = [reading(s, one_hot("neutral", 0.99)) for s in range(0, 10)]
    readings += [reading(s, one_hot("sad", 0.6)) for s in range(10, 13)] + [reading(s, one_hot("neutral", 0.99)) for s in range(13, 20)]
    readings += [reading(s, one_hot("fear", 0.8)) for s in range(20, 23)] + [reading(s, one_hot("neutral", 0.99)) for s in range(23, 30)]
    assert [p.label for p in analytics.find_peaks(analytics.readings_frame(readings, start=T0))] == ["fear", "sad"]


def test_change_from_baseline_subtracts_the_calm_mean():
    calm = frame_of((0, "neutral"), (1, "neutral"))
    baseline = analytics.baseline_from(calm)
    assert baseline["neutral"] == pytest.approx(1.0)
    changed = analytics.change_from_baseline(frame_of((5, "happy")), baseline)
    assert changed["happy"].iloc[0] == pytest.approx(1.0)
    assert changed["neutral"].iloc[0] == pytest.approx(-1.0)
    assert analytics.baseline_from(analytics.readings_frame([])) is None


def test_a_first_minute_baseline_of_a_40_second_session_says_it_cannot_be_computed():
    short = frame_of(*[(float(s), "neutral") for s in range(40)])
    result = analytics.first_minute_baseline(short)
    assert result.values is None
    assert "only 39 s" in result.problem and "whole session" in result.problem
    long = frame_of(*[(float(s), "neutral") for s in range(0, 60)] + [(float(s), "happy") for s in range(60, 120)])
    result = analytics.first_minute_baseline(long)
    assert result.problem is None and result.values["neutral"] == pytest.approx(60 / 61)
    assert analytics.session_baseline(frame_of((0, "neutral")), "calibration").problem.startswith("No baseline: the calibration session has 1 readings")


def test_trend_is_the_least_squares_slope_per_session_with_a_confidence_interval():
    rising = analytics.trend([0.1, 0.2, 0.31, 0.4])
    assert rising.slope == pytest.approx(0.1, abs=0.01) and rising.at(4) == pytest.approx(0.505, abs=0.01)
    assert rising.slope_low > 0 and rising.direction == "rising"
    assert analytics.trend([0.5, 0.41, 0.3, 0.2]).direction == "falling"
    assert analytics.trend([0.4, 0.4, 0.4]).direction == "no clear trend"
    assert analytics.trend([0.5, 0.3]).direction == "too few sessions"  # a line through two points has no interval
    assert analytics.trend([0.7]).direction == "too few sessions" and analytics.trend([]).points == 0


def test_a_trend_on_noise_is_not_called_a_trend():
    # Six sessions scattered around 0.3 with a small upward slope by chance (+0.008/session): the old code called
    # this "rising"; the 95 % interval of the slope includes zero.
    noisy = analytics.trend([0.30, 0.22, 0.38, 0.27, 0.36, 0.31])
    assert noisy.slope > 0.001 and noisy.slope_low < 0 < noisy.slope_high
    assert noisy.direction == "no clear trend" and not noisy.significant
    # The t quantile behind the interval: 2.776 for 4 degrees of freedom, close to 1.96 for many.
    assert analytics.t_quantile_975(4) == 2.776 and analytics.t_quantile_975(200) == pytest.approx(1.97, abs=0.01)


def test_equal_values_are_never_a_trend_whatever_the_rounding():
    # Least squares through equal values leaves a slope of rounding error (about 1e-18) and zero residuals: the old
    # code then called 0.1, 0.1, 0.1, 0.1 "rising" (85 of these 185 series).
    for sessions in range(3, 40):
        for value in (0.1, 1 / 3, 0.7, 0.05, 0.123456):
            flat = analytics.trend([value] * sessions)
            assert flat.slope == 0.0 and flat.intercept == pytest.approx(value)
            assert not flat.significant and flat.direction == "no clear trend", (sessions, value)
    assert analytics.trend([0.1, 0.1, 0.1 + 1e-3]).slope > 0  # a real, if small, difference is still a slope


def test_session_intervals_come_from_a_block_bootstrap_and_contain_the_mean():
    pairs = [(float(s), "happy" if (s // 10) % 2 else "sad") for s in range(120)]  # 10-second stretches alternating
    frame = frame_of(*pairs)
    point = analytics.session_point_from_frame("s", T0, frame)
    interval = point.intervals["happy"]
    assert interval.low < point.proportions["happy"] < interval.high
    assert interval.high - interval.low > 0.2  # 12 blocks, not 120 independent readings: honestly wide
    again = analytics.session_point_from_frame("s", T0, frame)
    assert again.intervals == point.intervals  # seeded: the page does not change on a rerun
    assert point.intervals["valence"].low < point.valence < point.intervals["valence"].high


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
    assert trends["happy"].slope > 0 and trends["sad"].slope < 0 and trends["valence"].slope > 0
    assert trends["happy"].direction == "too few sessions"
    assert frame["happy_low"].isna().all()  # points from aggregates carry no intervals


def test_summary_names_the_most_frequent_emotion_duration_valence_and_peaks():
    pairs = [(float(s), "happy") for s in range(0, 20)] + [(float(s), "sad") for s in range(20, 25)]
    summary = analytics.summarize(frame_of(*pairs))
    assert summary.readings == 25 and summary.duration_s == 24.0
    assert summary.dominant == "happy"
    assert summary.valence_index == pytest.approx((20 * 0.7425 - 5 * 0.85) / 25)
    assert sorted(p.label for p in summary.peaks) == ["happy", "sad"]


def test_downsample_keeps_long_sessions_under_the_point_budget():
    frame = frame_of(*[(float(s), "happy" if s % 2 else "sad") for s in range(3600)])
    reduced = analytics.downsample(frame, max_points=600)
    assert len(reduced) == 600
    assert reduced["t"].iloc[0] == pytest.approx(2.5) and reduced["t"].iloc[-1] == pytest.approx(3596.5)
    assert analytics.downsample(frame.head(10), max_points=600).equals(frame.head(10))


def test_t_never_goes_negative_when_readings_precede_the_session_start():
    frame = analytics.readings_frame([reading(5.0, one_hot("happy")), reading(7.0, one_hot("sad"))], start=T0 + timedelta(seconds=10))
    assert frame["t"].tolist() == [0.0, 2.0]
