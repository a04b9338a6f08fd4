"""Reactions to events on known synthetic sessions: the app's numbers equal the ones computed by hand from the formula in
app/reactions.py (and docs/app.md), and the Welch interval uses the right Student-t quantiles."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pandas as pd
import pytest

from app import affect, reactions
from fer.labels import LABELS

START = datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc)


def frame_of(rows: list[tuple[float, dict[str, float]]]) -> pd.DataFrame:
    """A readings frame: (t, {label: probability}) rows, the rest of the mass on neutral."""
    records = []
    for t, probabilities in rows:
        values = {label: probabilities.get(label, 0.0) for label in LABELS}
        values["neutral"] = 1.0 - sum(v for k, v in values.items() if k != "neutral")
        records.append({"captured_at": pd.Timestamp(START) + pd.Timedelta(seconds=t), "t": t, **values})
    frame = pd.DataFrame(records)
    frame["dominant"] = frame[list(LABELS)].idxmax(axis=1)
    return frame


# Before the marker at t=10 (window 10 s: 0 <= t < 10): happy 0.1, 0.2, 0.3 at t=2, 5, 8 (t=-1 is outside: negative
# times do not occur, t=0 reading is inside). After (10 <= t < 20): happy 0.6, 0.8 at t=10, 15; t=20 is outside.
SESSION = frame_of([(0.0, {"happy": 0.0}), (2.0, {"happy": 0.1}), (5.0, {"happy": 0.2}), (8.0, {"happy": 0.3}),
                    (10.0, {"happy": 0.6}), (15.0, {"happy": 0.8}), (20.0, {"happy": 0.9, })])


def by_measure(found):
    return {r.measure: r for r in found}


def test_a_reaction_equals_the_hand_computed_change_counts_and_welch_interval():
    found = by_measure(reactions.marker_reactions(SESSION, at_s=10.0, before_s=10.0, after_s=10.0, group="m"))
    happy = found["happy"]
    before, after = [0.0, 0.1, 0.2, 0.3], [0.6, 0.8]
    assert (happy.n_before, happy.n_after) == (4, 2)
    assert happy.mean_before == pytest.approx(0.15) and happy.mean_after == pytest.approx(0.7)
    assert happy.change == pytest.approx(0.55)
    # by hand: s_b^2 = 0.05/3, s_a^2 = 0.02; q_b = 0.05/12, q_a = 0.01; df = (q_b+q_a)^2 / (q_b^2/3 + q_a^2/1)
    q_b, q_a = (0.05 / 3) / 4, 0.02 / 2
    df = (q_b + q_a) ** 2 / (q_b ** 2 / 3 + q_a ** 2 / 1)
    assert df == pytest.approx(1.8972, abs=1e-4)
    half = reactions.student_t_quantile(0.975, df) * math.sqrt(q_b + q_a)
    assert (happy.ci_low, happy.ci_high) == (pytest.approx(0.55 - half), pytest.approx(0.55 + half))
    assert happy.ci_low == pytest.approx(0.0103, abs=1e-4) and happy.ci_high == pytest.approx(1.0897, abs=1e-4)
    # neutral moves the other way by the same amount (the rest of the mass), the other classes do not move
    assert found["neutral"].change == pytest.approx(-0.55)
    assert all(found[label].change == pytest.approx(0.0) for label in ("angry", "disgust", "fear", "sad", "surprise"))


def test_valence_and_arousal_change_by_the_mapping_times_the_probability_change():
    found = by_measure(reactions.marker_reactions(SESSION, 10.0, 10.0, 10.0, "m"))
    happy_valence, happy_arousal = affect.AFFECT_COORDINATES["happy"]
    assert found["valence"].change == pytest.approx(0.55 * happy_valence)
    assert found["arousal"].change == pytest.approx(0.55 * happy_arousal)


def test_a_window_with_fewer_than_two_readings_has_no_interval_but_keeps_its_counts():
    found = by_measure(reactions.marker_reactions(SESSION, 20.0, 5.0, 5.0, "m"))  # before: t=15; after: t=20
    assert (found["happy"].n_before, found["happy"].n_after) == (1, 1)
    assert found["happy"].change == pytest.approx(0.1)
    assert found["happy"].ci_low is None and found["happy"].ci_high is None


def test_an_event_with_no_readings_after_has_no_change():
    found = by_measure(reactions.marker_reactions(SESSION, 100.0, 10.0, 10.0, "m"))
    assert found["happy"].n_after == 0 and found["happy"].change is None


def test_a_marker_type_pools_the_windows_of_all_its_markers_across_sessions():
    other = frame_of([(0.0, {"happy": 0.5}), (1.0, {"happy": 0.5}), (3.0, {"happy": 0.1}), (4.0, {"happy": 0.3})])
    found = by_measure(reactions.pooled_reactions([(SESSION, [10.0]), (other, [2.0]), (other, [])], 10.0, 10.0, "distress"))
    happy = found["happy"]
    assert happy.events == 2 and (happy.n_before, happy.n_after) == (6, 4)
    assert happy.change == pytest.approx((0.6 + 0.8 + 0.1 + 0.3) / 4 - (0.0 + 0.1 + 0.2 + 0.3 + 0.5 + 0.5) / 6)


def test_identical_windows_have_a_zero_width_interval():
    flat = frame_of([(t, {"sad": 0.4}) for t in range(10)])
    sad = by_measure(reactions.marker_reactions(flat, 5.0, 5.0, 5.0, "m"))["sad"]
    assert sad.change == pytest.approx(0.0) and sad.ci_low == pytest.approx(0.0) and sad.ci_high == pytest.approx(0.0)


@pytest.mark.parametrize("p, df, expected", [(0.975, 1, 12.7062047), (0.975, 10, 2.2281389), (0.995, 30, 2.7499957),
                                             (0.975, 1e7, 1.9599640)])
def test_student_t_quantiles_match_published_tables(p, df, expected):
    assert reactions.student_t_quantile(p, df) == pytest.approx(expected, abs=1e-6)


def test_the_mapping_puts_neutral_at_the_origin_and_happy_above_sad():
    values = affect.valence_arousal(frame_of([(0.0, {}), (1.0, {"happy": 1.0}), (2.0, {"sad": 1.0})]))
    assert values.iloc[0].tolist() == [0.0, 0.0]
    assert values["valence"].iloc[1] > 0 > values["valence"].iloc[2]
    assert values["arousal"].iloc[1] > values["arousal"].iloc[2]
