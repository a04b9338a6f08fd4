"""app.charts: the figures carry what the pages promise (pure functions, no browser)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pandas as pd
import pytest

from app import analytics, charts
from fer.labels import LABELS
from store.models import Annotation
from tests.app.test_analytics import T0, frame_of


def test_the_review_figure_has_the_seven_lines_the_dominant_band_valence_peaks_and_notes():
    frame = analytics.smooth(frame_of(*[(float(s), "neutral") for s in range(30)] + [(float(s), "happy") for s in range(30, 40)]), 3)
    note = Annotation(uuid.uuid4(), uuid.uuid4(), T0 + timedelta(seconds=12), "mentioned work", uuid.uuid4())
    peaks = analytics.find_peaks(frame, height=0.5)
    figure = charts.review_figure(frame, [note], peaks, pd.Timestamp(T0))
    names = [trace.name for trace in figure.data]
    assert names[:7] == list(LABELS)
    assert "valence" in names and "peaks" in names and "notes" in names
    bars = [trace for trace in figure.data if trace.type == "bar"]
    assert [bar.marker.color for bar in bars] == [charts.EMOTION_COLORS["neutral"], charts.EMOTION_COLORS["happy"]]
    notes = next(trace for trace in figure.data if trace.name == "notes")
    assert list(notes.x) == [12.0] and list(notes.text) == ["mentioned work"]
    assert any(shape.x0 == 12.0 for shape in figure.layout.shapes)  # the dashed marker across the rows


def progress_of(happy: list[float]) -> pd.DataFrame:
    points = []
    for i, h in enumerate(happy):
        point = analytics.session_point(i, T0 + timedelta(days=7 * i), 10, [0.1, 0, 0, h, 0.5 - h, 0, 0.4])
        intervals = {label: analytics.Interval(max(v - 0.05, 0), v + 0.05) for label, v in point.proportions.items()}
        points.append(analytics.SessionPoint(point.session_id, point.started_at, 10, point.proportions, point.valence, intervals | {"valence": analytics.Interval(point.valence - 0.1, point.valence + 0.1)}))
    return analytics.progress_frame(points)


def test_the_progress_figure_draws_each_emotion_with_its_interval_and_a_trend_only_where_there_is_one():
    progress = progress_of([0.1, 0.2, 0.31, 0.4])
    figure = charts.progress_figure(progress, analytics.progress_trends(progress))
    points = [t for t in figure.data if t.name in LABELS]
    assert [t.name for t in points] == list(LABELS)
    happy = next(t for t in points if t.name == "happy")
    assert list(happy.error_y.array) == pytest.approx([0.05] * 4)
    happy_trend = next(t for t in figure.data if t.name == "happy trend")
    assert happy_trend.yaxis in (None, "y")  # same axis as the points: the line runs through them
    assert list(happy_trend.x) == list(happy.x)
    assert [round(v, 2) for v in happy_trend.y] == pytest.approx([0.1, 0.2, 0.3, 0.4], abs=0.01)
    assert "angry trend" not in [t.name for t in figure.data]  # flat: no trend drawn
    noisy = progress_of([0.30, 0.22, 0.38, 0.27, 0.36, 0.31])
    assert "happy trend" not in [t.name for t in charts.progress_figure(noisy, analytics.progress_trends(noisy)).data]
    valence = charts.valence_progress_figure(noisy, analytics.progress_trends(noisy)["valence"])
    assert [t.name for t in valence.data] == ["valence (95 % interval)"]


def _lab(hex_colour: str) -> tuple[float, float, float]:
    rgb = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    x = (0.4124 * linear[0] + 0.3576 * linear[1] + 0.1805 * linear[2]) / 0.95047
    y = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    z = (0.0193 * linear[0] + 0.1192 * linear[1] + 0.9505 * linear[2]) / 1.08883
    f = [v ** (1 / 3) if v > 0.008856 else 7.787 * v + 16 / 116 for v in (x, y, z)]
    return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])


def test_every_emotion_has_its_own_clearly_different_colour_on_every_chart():
    import itertools
    import math

    colours = charts.EMOTION_COLORS
    assert set(colours) == set(LABELS) and len(set(colours.values())) == 7
    distances = {(a, b): math.dist(_lab(colours[a]), _lab(colours[b])) for a, b in itertools.combinations(LABELS, 2)}
    assert min(distances.values()) >= 30, min(distances.items(), key=lambda kv: kv[1])
    assert charts.VALENCE_COLOR not in colours.values()
    frame = frame_of(*[(float(s), "happy") for s in range(10)])
    for figure in (charts.live_figure(frame, "k"), charts.probabilities_figure(frame), charts.baseline_figure(frame)):
        assert {t.name: t.line.color for t in figure.data if t.name in LABELS} == colours


def test_legends_sit_below_the_plot_away_from_the_toolbar():
    frame = frame_of(*[(float(s), "happy") for s in range(10)])
    for figure in (charts.live_figure(frame, "k"), charts.review_figure(frame), charts.distribution_figure({"happy": 1.0})):
        assert figure.layout.legend.y < 0 and figure.layout.legend.yanchor == "top"


def test_the_live_chart_is_stacked_smoothed_areas():
    pairs = [(float(s), "happy" if s % 2 else "sad") for s in range(30)]  # flickering every second
    figure = charts.live_figure(frame_of(*pairs), "k")
    assert {t.stackgroup for t in figure.data} == {"probabilities"}
    happy = next(t for t in figure.data if t.name == "happy")
    assert max(happy.y[3:-3]) < 0.7  # smoothed over 3 s, not jumping between 0 and 1


def test_the_live_figure_stays_light_for_an_hour_long_session():
    frame = frame_of(*[(float(s), "happy") for s in range(3600)])
    figure = charts.live_figure(frame, "session-key")
    assert len(figure.data) == 7 and len(figure.data[0].x) <= 1200
    assert figure.layout.uirevision == "session-key"  # zoom survives the once-a-second refresh
