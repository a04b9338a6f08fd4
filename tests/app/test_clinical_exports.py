"""The issue-15 exports from a real session in PostgreSQL: the detailed readings CSV (face box, quality flags, markers on
the right rows), the markers CSV, the PDF, the small HTML and the FHIR bundle, each audited; and the review page offers them."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

from app import clinical_exports, markers, review
from fer.labels import LABELS
from store.models import Reading
from tests.app.conftest import open_page
from tests.app.helpers import consenting_patient, device_session, one_hot, recorded_session


def audited(admin_store, session) -> set[str]:
    return {e.action for e in admin_store.list_audit() if e.entity_id == str(session.id)}


def test_the_detailed_csv_has_box_flags_and_each_marker_on_one_row(clinician_store, store_factory, admin_store):
    patient = consenting_patient(clinician_store, "Rita Solís")
    session, device_store = device_session(clinician_store, store_factory, patient)
    start = session.started_at
    device_store.insert_readings([
        Reading(session.id, start + timedelta(seconds=0), one_hot("neutral"), "pi", box=(10, 20, 30, 40)),
        Reading(session.id, start + timedelta(seconds=1), one_hot("sad"), "pi", box=None, faces=0),
        Reading(session.id, start + timedelta(seconds=2), one_hot("sad"), "pi", box=(12, 22, 30, 40), faces=2),
    ])
    clinician_store.end_session(session.id)
    session = clinician_store.get_session(session.id)
    clinician_store.add_marker(session.id, start + timedelta(seconds=0.5), "distress", "x")
    clinician_store.add_marker(session.id, start + timedelta(seconds=0.8), "topic: family")
    result = review.build(clinician_store, session)
    rows = list(csv.DictReader(io.StringIO(clinical_exports.readings_detail_csv(clinician_store, result).decode())))
    assert list(rows[0]) == list(clinical_exports.DETAIL_COLUMNS)
    assert [(r["box_x"], r["box_w"], r["faces"], r["flag_no_box"], r["flag_multiple_faces"]) for r in rows] == [
        ("10", "30", "1", "0", "0"), ("", "", "0", "1", "0"), ("12", "30", "2", "0", "1")]
    assert [r["markers"] for r in rows] == ["", "distress; topic: family", ""]
    assert abs(sum(float(rows[1][label]) for label in LABELS) - 1.0) < 1e-5
    marker_rows = list(csv.DictReader(io.StringIO(clinical_exports.markers_csv(clinician_store, result).decode())))
    assert [(r["kind"], r["text"], r["t_s"]) for r in marker_rows] == [("distress", "x", "0.5"), ("topic: family", "", "0.8")]
    assert {"export_csv_detail", "export_markers"} <= audited(admin_store, session)


def test_pdf_html_and_fhir_sessions_of_a_stored_session_are_audited(clinician_store, store_factory, admin_store, clinician):
    patient = consenting_patient(clinician_store, "Sara Ibáñez")
    session = recorded_session(clinician_store, store_factory, patient, ["neutral"] * 30 + ["happy"] * 30)
    markers.mark_at(clinician_store, session, markers.timeline_origin(session), 30, "exercise start",
                    frame=review.build(clinician_store, session).frame)
    result = review.build(clinician_store, session)
    pdf = clinical_exports.pdf_report(clinician_store, result, patient, clinician, 30, 30)
    assert pdf.startswith(b"%PDF-")
    page = clinical_exports.html_report(clinician_store, result, patient, clinician, 30, 30)
    assert "exercise start" in page and len(page.encode()) < 300_000
    bundle = json.loads(clinical_exports.fhir_bundle(clinician_store, result, patient, clinician, 30, 30))
    assert bundle["resourceType"] == "Bundle" and bundle["entry"][0]["resource"]["name"][0]["text"] == "Sara Ibáñez"
    assert {"export_pdf", "export_report", "export_fhir"} <= audited(admin_store, session)


def test_the_review_page_offers_the_new_exports(signed_in_app, clinician_store, store_factory):
    patient = consenting_patient(clinician_store, "Tere Vidal")
    session = recorded_session(clinician_store, store_factory, patient, ["neutral"] * 20)
    at = open_page(signed_in_app, "pages/review.py", session=session.id)
    assert not at.exception
    labels = [d.label for d in at.get("download_button")]
    assert {"Report (PDF)", "FHIR R4 bundle (JSON)", "Readings with face box, flags, markers (CSV)", "Markers (CSV)",
            "Printable report (HTML)"} <= set(labels)
    assert "Printable report, small (HTML)" not in labels  # one printable report (app.report_pdf), not two
