"""Expressivity on known synthetic sessions: a flat session scores below a varied one on every measure, and each measure
equals its formula (app/expressivity.py, docs/app.md) on a hand-sized example."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from app import expressivity
from fer.labels import LABELS

START = datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc)


def one_hot(label: str, weight: float = 0.85) -> dict[str, float]:
    rest = (1.0 - weight) / 6
    return {name: weight if name == label else rest for name in LABELS}


def frame_of(labels: list[str], every_s: float = 1.0) -> pd.DataFrame:
    rows = [{"captured_at": pd.Timestamp(START + timedelta(seconds=i * every_s)), "t": i * every_s, **one_hot(label)}
            for i, label in enumerate(labels)]
    frame = pd.DataFrame(rows)
    frame["dominant"] = frame[list(LABELS)].idxmax(axis=1)
    return frame


FLAT = frame_of(["neutral"] * 120)
VARIED = frame_of((["neutral"] * 10 + ["happy"] * 10 + ["sad"] * 10 + ["surprise"] * 10) * 3)


def test_a_flat_session_scores_below_a_varied_one_on_every_measure():
    flat, varied = expressivity.session_expressivity(FLAT), expressivity.session_expressivity(VARIED)
    assert flat.non_neutral_share == 0.0 and flat.variability == pytest.approx(0.0) and flat.entropy == 0.0
    assert flat.change_rate == 0.0
    for name in expressivity.MEASURES:
        assert getattr(flat, name) < getattr(varied, name), name


def test_each_measure_equals_its_formula_on_the_varied_session():
    result = expressivity.session_expressivity(VARIED, window_s=1.0)  # a 1 s window: each reading alone
    assert result.readings == 120
    assert result.non_neutral_share == pytest.approx(90 / 120)
    assert result.entropy == pytest.approx(math.log2(4) / math.log2(7))  # four labels, a quarter each
    assert result.change_rate == pytest.approx(11 / (119 / 60))  # 11 label changes over 119 s
    # each of happy, sad, surprise, neutral: 30 readings at 0.85 and 90 at 0.025; the others constant at 0.025
    values = [0.85] * 30 + [0.025] * 90
    sd = pd.Series(values).std(ddof=1)
    assert result.variability == pytest.approx(4 * sd / 7)


def test_single_frame_flicker_does_not_count_as_an_expression_change():
    flicker = frame_of((["neutral"] * 9 + ["happy"]) * 12, every_s=0.25)  # one happy frame every 2.5 s
    assert expressivity.session_expressivity(flicker).change_rate == 0.0  # the 3 s window keeps neutral dominant
    assert expressivity.session_expressivity(flicker, window_s=0.1).change_rate > 0


def test_too_few_readings_give_no_measures():
    assert expressivity.session_expressivity(frame_of(["happy"] * (expressivity.MIN_READINGS - 1))) is None


def test_the_course_compares_each_session_with_the_patients_first_sessions():
    points = [(f"s{i}", START + timedelta(days=7 * i), expressivity.session_expressivity(frame))
              for i, frame in enumerate([VARIED, VARIED, VARIED, FLAT, FLAT])]
    points.append(("empty", START + timedelta(days=60), None))
    result = expressivity.course(list(reversed(points)))
    assert list(result.frame["session"]) == [1, 2, 3, 4, 5] and list(result.frame["session_id"]) == ["s0", "s1", "s2", "s3", "s4"]
    varied = expressivity.session_expressivity(VARIED)
    assert result.reference_sessions == 3
    assert result.reference["entropy"] == pytest.approx(varied.entropy)
    assert all(result.frame[name].iloc[4] < result.reference[name] for name in expressivity.MEASURES)
    figure = expressivity.course_figure(result)
    assert len(figure.data) == 4 and len(figure.layout.shapes) == 4


def test_the_progress_page_plots_expressivity_against_the_first_sessions(signed_in_app, clinician_store, store_factory):
    from tests.app.conftest import open_page, page_text
    from tests.app.helpers import consenting_patient, recorded_session

    patient = consenting_patient(clinician_store, "Pia Lozano")
    recorded_session(clinician_store, store_factory, patient, (["neutral"] * 5 + ["happy"] * 5 + ["sad"] * 5) * 2)
    recorded_session(clinician_store, store_factory, patient, ["neutral"] * 30)
    at = open_page(signed_in_app, "pages/progress.py", patient=patient.id)
    assert not at.exception
    assert "Expressivity per session" in page_text(at) and "not a diagnosis" in page_text(at)
    [figure] = [c for c in at.get("plotly_chart") if "expressivity" in str(c.proto.id) or "Entropy" in c.proto.spec]
    assert "Share of time away from neutral" in figure.proto.spec
