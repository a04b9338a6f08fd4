"""Comparisons: two sessions of a patient side by side, and the cohort of the signed-in clinician's own patients only."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app import affect, cohort, markers
from fer.labels import LABELS
from store.api import Actor
from tests.app.conftest import open_page, page_text
from tests.app.helpers import consenting_patient, one_hot, recorded_session


def valence_of(label: str) -> float:
    return sum(p * affect.AFFECT_COORDINATES[l][0] for l, p in zip(LABELS, one_hot(label)))


def test_the_cohort_counts_sessions_per_week_and_their_mean_valence(clinician_store, store_factory):
    ana = consenting_patient(clinician_store, "Ana")
    ben = consenting_patient(clinician_store, "Ben")
    recorded_session(clinician_store, store_factory, ana, ["happy"] * 10)
    recorded_session(clinician_store, store_factory, ana, ["sad"] * 10)
    recorded_session(clinician_store, store_factory, ben, ["happy"] * 5 + ["sad"] * 5)
    result = cohort.cohort(clinician_store)
    assert len(result.sessions) == 3 and result.per_week["sessions"].sum() == 3
    valences = sorted(result.sessions["mean_valence"])
    assert valences == pytest.approx(sorted([valence_of("happy"), valence_of("sad"),
                                             (valence_of("happy") + valence_of("sad")) / 2]))


def test_the_cohort_never_shows_another_clinicians_patients_even_to_an_admin(clinician_store, store_factory, system_store, admin_store):
    recorded_session(clinician_store, store_factory, consenting_patient(clinician_store, "Carla"), ["happy"] * 10)
    assert cohort.cohort(admin_store).sessions.empty  # the admin sees Carla elsewhere, but she is not their patient
    assert list(cohort.cohort(clinician_store).sessions["patient"]) == ["Carla"]


def test_a_session_side_has_its_distribution_affect_and_reactions(clinician_store, store_factory):
    patient = consenting_patient(clinician_store, "Dora")
    session = recorded_session(clinician_store, store_factory, patient, ["neutral"] * 20 + ["sad"] * 20)
    side0 = cohort.session_side(clinician_store, session, 10, 10)
    markers.mark_at(clinician_store, session, markers.timeline_origin(session, side0.frame), 20, "distress", frame=side0.frame)
    side = cohort.session_side(clinician_store, session, 10, 10)
    assert side.distribution["sad"] == pytest.approx(0.5)
    assert side.mean_valence == pytest.approx((valence_of("neutral") + valence_of("sad")) / 2)
    by = {r.measure: r for r in side.reactions["distress"]}
    assert by["valence"].change == pytest.approx(valence_of("sad") - valence_of("neutral"))
    assert [t.name for t in cohort.affect_figure(side).data] == ["valence", "arousal", "markers"]


def test_the_compare_and_cohort_pages_render(signed_in_app, clinician_store, store_factory):
    patient = consenting_patient(clinician_store, "Elsa")
    recorded_session(clinician_store, store_factory, patient, ["happy"] * 20)
    recorded_session(clinician_store, store_factory, patient, ["sad"] * 20)
    at = open_page(signed_in_app, "pages/compare.py", patient=patient.id)
    assert not at.exception
    assert len(at.get("plotly_chart")) == 4 and [m.label for m in at.metric].count("Mean valence") == 2
    at = open_page(signed_in_app, "pages/cohort.py")
    assert not at.exception
    assert "Sessions per week" in page_text(at) and list(at.dataframe[0].value["patient"]) == ["Elsa", "Elsa"]
