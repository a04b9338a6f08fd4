"""`make demo`: the demo data set loads once into a real database and gives every page something to show."""

from __future__ import annotations

import numpy as np
import pytest

from app import demo, progress
from store.api import Actor
from store.errors import InvalidInput


def test_synthetic_probabilities_are_valid_rows_that_follow_the_mood():
    rows = demo.synthetic_probabilities(300, 2.0, demo.mood(0, 2, {"sad": 2.0}, {"happy": 2.0}), seed=1)
    assert rows.shape == (600, 7)
    assert np.allclose(rows.sum(axis=1), 1.0) and (rows >= 0).all()
    assert rows[:, 4].mean() > rows[:, 3].mean()  # sad beats happy at the start of treatment


def test_the_demo_loads_patients_sessions_and_a_visible_trend_and_refuses_to_load_twice(system_store):
    summary = demo.load_demo(system_store, "demo-password-1", sessions_per_patient=3, session_seconds=60)
    assert summary == {"clinician": "demo", "patients": 3, "sessions": 9, "readings": 9 * 120, "device": "pi-demo-room"}
    clinician = system_store.get_clinician_by_username("demo")
    store = system_store.as_actor(Actor.for_clinician(clinician))
    ana = next(p for p in store.list_patients() if p.full_name == "Ana Demo")
    assert ana.consent_facial_analysis
    course = progress.patient_progress(store, ana.id)
    assert course.sessions == 3
    assert course.trends["sad"].slope < 0 < course.trends["happy"].slope
    assert all(s.status == "ended" for s in store.list_sessions(ana.id))
    with pytest.raises(InvalidInput):
        demo.load_demo(system_store, "demo-password-1")
