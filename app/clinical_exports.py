"""Exports added by issue 15, each audited when generated: the detailed readings CSV (face box, quality flags, markers),
the markers CSV, the PDF report, the printable HTML report (the app's only one) and the FHIR bundle. Column meanings:
docs/app.md, "Export dictionary"."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

import pandas as pd

from app import fhir_session, report_pdf, sessions
from app import markers as marker_service
from fer.labels import LABELS
from store.api import Store
from store.markers import Marker
from store.models import Clinician, Patient, Reading

DETAIL_COLUMNS: tuple[str, ...] = ("reading_id", "captured_at", "t", *LABELS, "dominant", "source", "box_x", "box_y",
                                   "box_w", "box_h", "faces", "flag_no_box", "flag_multiple_faces", "markers")


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def readings_detail_frame(readings: Sequence[Reading], origin: datetime, markers: Sequence[Marker]) -> pd.DataFrame:
    """One row per reading, oldest first. `markers`: the kinds of the markers placed after the previous reading and up to
    this one ("; "-joined), so every marker lands on exactly one row (markers after the last reading: on the last row)."""
    ordered = sorted(readings, key=lambda r: r.captured_at)
    rows = []
    for r in ordered:
        box = r.box or (None, None, None, None)
        rows.append({"reading_id": str(r.id), "captured_at": _iso(r.captured_at),
                     "t": round((r.captured_at - origin).total_seconds(), 3),
                     **{label: p for label, p in zip(LABELS, r.probabilities)}, "dominant": r.dominant,
                     "source": r.source, "box_x": box[0], "box_y": box[1], "box_w": box[2], "box_h": box[3],
                     "faces": r.faces, "flag_no_box": int(r.box is None), "flag_multiple_faces": int(r.faces > 1),
                     "markers": ""})
    frame = pd.DataFrame(rows, columns=list(DETAIL_COLUMNS))
    if frame.empty or not markers:
        return frame
    times = [r.captured_at for r in ordered]
    labels: list[list[str]] = [[] for _ in ordered]
    for marker in sorted(markers, key=lambda m: m.at):
        index = next((i for i, t in enumerate(times) if t >= marker.at), len(times) - 1)
        labels[index].append(marker.kind)
    frame["markers"] = ["; ".join(kinds) for kinds in labels]
    return frame


def readings_detail_csv(store: Store, review) -> bytes:
    origin = marker_service.timeline_origin(review.session, review.frame)
    frame = readings_detail_frame(sessions.all_readings(store, review.session.id), origin, review.markers)
    store.audit("export_csv_detail", "session", str(review.session.id))
    for column in ("box_x", "box_y", "box_w", "box_h"):
        frame[column] = frame[column].astype("Int64")
    return frame.to_csv(index=False, float_format="%.6f").encode("utf-8")


def markers_csv(store: Store, review) -> bytes:
    origin = marker_service.timeline_origin(review.session, review.frame)
    store.audit("export_markers", "session", str(review.session.id))
    return marker_service.markers_frame(review.markers, origin).to_csv(index=False).encode("utf-8")


def pdf_report(store: Store, review, patient: Patient, clinician: Clinician, before_s: float, after_s: float,
               tz: str | None = None) -> bytes:
    pdf = report_pdf.session_report_pdf(report_pdf.content_from_review(review, patient, clinician, before_s, after_s, tz))
    store.audit("export_pdf", "session", str(review.session.id))
    return pdf


def html_report(store: Store, review, patient: Patient, clinician: Clinician, before_s: float = 30.0,
                after_s: float = 30.0, tz: str | None = None) -> str:
    """The printable HTML report (inline SVG charts, no script; times in `tz`, the clinician's zone)."""
    page = report_pdf.session_report_html(report_pdf.content_from_review(review, patient, clinician, before_s, after_s, tz))
    store.audit("export_report", "session", str(review.session.id))
    return page


def fhir_bundle(store: Store, review, patient: Patient, clinician: Clinician, before_s: float, after_s: float) -> bytes:
    content = report_pdf.content_from_review(review, patient, clinician, before_s, after_s)
    data = fhir_session.session_bundle_json(content, report_pdf.session_report_pdf(content))
    store.audit("export_fhir", "session", str(review.session.id))
    return data
