"""app.charts: the figures carry what the pages promise (pure functions, no browser)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pandas as pd

from app import analytics, charts
from fer.labels import LABELS
from store.models import Annotation
from tests.app.test_analytics import T0, frame_of


def test_the_review_figure_has_the_seven_lines_the_dominant_band_valence_peaks_and_notes():
    frame = analytics.smooth(frame_of(*[(float(s), "neutral") for s in range(30)] + [(float(s), "happy") for s in range(30, 40)]), 3)
    note = Annotation(uuid.uuid4(), uuid.uuid4(), T0 + timedelta(seconds=12), "mentioned work", uuid.uuid4())
    peaks = analytics.find_peaks(frame, min_height=0.5)
    figure = charts.review_figure(frame, [note], peaks, pd.Timestamp(T0))
    names = [trace.name for trace in figure.data]
    assert names[:7] == list(LABELS)
    assert "valence" in names and "peaks" in names and "notes" in names
    bars = [trace for trace in figure.data if trace.type == "bar"]
    assert [bar.marker.color for bar in bars] == [charts.EMOTION_COLORS["neutral"], charts.EMOTION_COLORS["happy"]]
    notes = next(trace for trace in figure.data if trace.name == "notes")
    assert list(notes.x) == [12.0] and list(notes.text) == ["mentioned work"]
    assert any(shape.x0 == 12.0 for shape in figure.layout.shapes)  # the dashed marker across the rows


def test_the_progress_figure_stacks_proportions_and_draws_a_trend_per_emotion():
    points = [analytics.session_point(i, T0 + timedelta(days=7 * i), 10, [0.1, 0, 0, 0.2 + 0.1 * i, 0.3 - 0.1 * i, 0, 0.4]) for i in range(3)]
    progress = analytics.progress_frame(points)
    figure = charts.progress_figure(progress, analytics.progress_trends(progress))
    assert figure.layout.barmode == "stack"
    assert [t.name for t in figure.data if t.type == "bar"] == list(LABELS)
    happy_trend = next(t for t in figure.data if t.name == "happy trend")
    assert [round(v, 6) for v in happy_trend.y] == [0.2, 0.3, 0.4]


def test_the_live_figure_stays_light_for_an_hour_long_session():
    frame = frame_of(*[(float(s), "happy") for s in range(3600)])
    figure = charts.live_figure(frame, "session-key")
    assert len(figure.data) == 7 and len(figure.data[0].x) <= 1200
    assert figure.layout.uirevision == "session-key"  # zoom survives the once-a-second refresh
