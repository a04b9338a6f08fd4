"""Exports: the readings CSV and the printable HTML report (app.report_pdf, the only one), built from a real session in
PostgreSQL; both are audited."""

from __future__ import annotations

import csv
import io

from app import clinical_exports, review
from fer.labels import LABELS
from tests.app.helpers import consenting_patient, recorded_session


def test_the_csv_has_one_row_per_reading_with_millisecond_times(clinician_store, store_factory, admin_store, clinician):
    patient = consenting_patient(clinician_store, "Lucía Paredes")
    session = recorded_session(clinician_store, store_factory, patient, ["neutral", "happy", "sad"])
    result = review.build(clinician_store, session)
    rows = list(csv.DictReader(io.StringIO(review.readings_csv(clinician_store, result).decode())))
    assert list(rows[0]) == ["captured_at", "t", *LABELS, "dominant"]
    assert [r["dominant"] for r in rows] == ["neutral", "happy", "sad"]
    assert [float(r["t"]) for r in rows] == [0.0, 1.0, 2.0]
    assert rows[0]["captured_at"].endswith("Z") and len(rows[0]["captured_at"].split(".")[1]) == 4  # 3 digits + Z
    assert abs(sum(float(rows[1][label]) for label in LABELS) - 1.0) < 1e-5
    assert ("export_csv", "session", str(session.id)) in {(e.action, e.entity, e.entity_id) for e in admin_store.list_audit()}


def test_the_report_is_self_contained_escaped_and_carries_the_notice(clinician_store, store_factory, admin_store, clinician):
    patient = consenting_patient(clinician_store, "<script>alert(1)</script> Ortega", diagnosis="PTSD & insomnia")
    session = recorded_session(clinician_store, store_factory, patient, ["neutral"] * 70 + ["fear"] * 20)
    clinician_store.add_annotation(session.id, session.started_at, "mentioned <b>nightmares</b>")
    result = review.build(clinician_store, session, baseline_source="first_minute")
    html = clinical_exports.html_report(clinician_store, result, patient, clinician)
    assert "Decision support, not a diagnosis" in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; Ortega" in html
    assert "PTSD &amp; insomnia" in html and "mentioned &lt;b&gt;nightmares&lt;/b&gt;" in html
    assert "<script" not in html.lower() and "plotly" not in html.lower()  # charts drawn on the server
    assert html.count("<svg") == 3 and "Change against the baseline (first 60 s of this session)" in html  # timeline, distribution, baseline
    assert "Most frequent expression</th><td>neutral" in html and "@media print" in html
    assert ("export_report", "session", str(session.id)) in {(e.action, e.entity, e.entity_id) for e in admin_store.list_audit()}


def test_a_report_with_a_first_minute_baseline_of_a_40_second_session_says_it_cannot_be_computed(clinician_store, store_factory, clinician):
    patient = consenting_patient(clinician_store, "Nora Vidal")
    session = recorded_session(clinician_store, store_factory, patient, ["neutral"] * 30 + ["fear"] * 10)
    result = review.build(clinician_store, session, baseline_source="first_minute")
    assert result.baseline is None and "the readings cover only 39 s" in result.baseline_problem
    html = clinical_exports.html_report(clinician_store, result, patient, clinician)
    assert "No first-minute baseline" in html and html.count("<svg") == 2  # no baseline chart of zeros
