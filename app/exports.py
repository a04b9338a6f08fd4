"""Exports: a CSV of a session's readings and the export file names. The printable HTML and PDF reports are in
app.report_pdf (charts drawn on the server; no plotly.js in any report)."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd

from fer.labels import LABELS
from store.models import Patient, Session

CSV_COLUMNS: tuple[str, ...] = ("captured_at", "t", *LABELS, "dominant")


def readings_csv(frame: pd.DataFrame) -> bytes:
    """One row per reading: ISO time with milliseconds (UTC), seconds since start, the 7 probabilities, dominant."""
    out = frame.loc[:, list(CSV_COLUMNS)].copy()
    out["captured_at"] = out["captured_at"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"
    return out.to_csv(index=False, float_format="%.6f").encode("utf-8")


def export_file_name(patient: Patient, session: Session, extension: str) -> str:
    # No patient name in the file name: file names leak into download folders and mail subjects.
    day = (session.started_at or session.created_at or datetime.now(timezone.utc)).strftime("%Y%m%d")
    return f"session-{day}-{str(session.id)[:8]}.{extension}"
