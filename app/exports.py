"""Exports: a CSV of a session's readings and a printable, self-contained HTML session report (charts, summary, notes).

The report embeds plotly.js once (no CDN: the app must work offline) and prints cleanly from the browser (File > Print,
or save as PDF). Every text from the database is HTML-escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime, timezone

import pandas as pd
import plotly.graph_objects as go

from app import analytics, clock
from app.ui import DISCLAIMER, MODE_LABELS, format_duration
from fer.labels import LABELS
from store.models import Annotation, Clinician, Patient, RecordEntry, Session

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


def _figure_html(figure: go.Figure, include_js: bool) -> str:
    return figure.to_html(full_html=False, include_plotlyjs=True if include_js else False, config={"displayModeBar": False, "staticPlot": False})


def session_report_html(
    patient: Patient,
    session: Session,
    clinician: Clinician,
    summary: analytics.SessionSummary,
    figures: Sequence[tuple[str, go.Figure]],
    annotations: Sequence[Annotation],
    notes: Sequence[RecordEntry] = (),
    generated_at: datetime | None = None,
    origin: datetime | None = None,
    baseline_problem: str | None = None,
    tz: str | None = None,
) -> str:
    """`origin`: the timeline's zero for note times (default: the session start). `baseline_problem`: why the chosen
    baseline could not be computed (printed instead of a baseline chart). `tz`: the clinician's time zone (IANA name);
    times are written in it with seconds, e.g. "2026-12-02 14:03:12-14:43:50 CET"."""
    generated_at = generated_at or datetime.now(timezone.utc)
    e = html.escape
    start = session.started_at
    zero = origin or start
    rows = [
        ("Patient", e(patient.full_name)),
        ("Date of birth", e(patient.date_of_birth.isoformat()) if patient.date_of_birth else "—"),
        ("Diagnosis", e(patient.diagnosis or "—")),
        ("Session", f"{e(MODE_LABELS.get(session.mode, session.mode))}, {e(clock.format_span(start, session.ended_at, tz))}"),
        ("Clinician", e(clinician.display_name)),
        ("Readings", f"{summary.readings} over {format_duration(summary.duration_s)}"),
        ("Most frequent emotion", e(summary.dominant or "—")),
        ("Valence index", "—" if summary.valence_index is None else f"{summary.valence_index:+.2f} (0 = as a neutral face; −0.85 all sad … +0.74 all happy; Warriner et al. 2013 ratings)"),
        ("Arousal index", "—" if summary.arousal_index is None else f"{summary.arousal_index:+.2f} (0 = as calm as a neutral face … +0.78 all surprise)"),
    ]
    facts = "\n".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    distribution = "\n".join(
        f"<tr><td>{e(label)}</td><td>{summary.distribution.get(label, 0.0):.1%}</td><td>{summary.mean_probabilities.get(label, 0.0):.3f}</td></tr>"
        for label in LABELS
    )
    peaks = "\n".join(f"<li>{e(p.label)} {p.value:.2f} at {format_duration(p.t)} (for {p.duration_s:.0f} s)</li>" for p in summary.peaks) or "<li>none (see the definition below)</li>"

    def note_time(note: Annotation) -> str:
        if zero is None:
            return e(clock.format_moment(note.at, tz))
        return format_duration((note.at - zero).total_seconds())

    annotation_items = "\n".join(f"<li><b>{note_time(n)}</b> {e(n.text)}</li>" for n in sorted(annotations, key=lambda a: a.at)) or "<li>none</li>"
    note_items = "\n".join(f"<li><b>{e(n.entry_date.isoformat())}</b> ({e(n.kind)}) {e(n.text)}</li>" for n in notes)
    charts = "\n".join(
        f"<section class='chart'><h2>{e(title)}</h2>{_figure_html(figure, include_js=(i == 0))}</section>" for i, (title, figure) in enumerate(figures)
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Session report {e(clock.format_moment(start, tz))}</title>
<style>
 body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }}
 table {{ border-collapse: collapse; margin: 0.5em 0 1em; }}
 th, td {{ text-align: left; padding: 0.2em 1em 0.2em 0; vertical-align: top; }}
 .notice {{ border: 1px solid #c9a400; background: #fff8d6; padding: 0.6em 1em; }}
 .chart {{ page-break-inside: avoid; }}
 @media print {{ body {{ margin: 0; max-width: none; }} }}
</style></head>
<body>
<h1>Session report</h1>
<p class="notice"><b>{e(DISCLAIMER)}</b></p>
<table>{facts}</table>
<h2>Emotion distribution</h2>
<table><tr><th>Emotion</th><th>Dominant in</th><th>Mean probability</th></tr>{distribution}</table>
{f"<p class='notice'>{e(baseline_problem)}</p>" if baseline_problem else ""}
<h2>Peaks</h2><ul>{peaks}</ul>
<p><small>A peak: an emotion at or above {analytics.PEAK_HEIGHT:.0%} for at least {analytics.PEAK_MIN_DURATION_S:g} s, rising at least {analytics.PEAK_PROMINENCE:.0%} above the readings around it, found on the readings (not the smoothed lines).</small></p>
<h2>Clinician's notes during the session</h2><ul>{annotation_items}</ul>
{f"<h2>Medical record entries</h2><ul>{note_items}</ul>" if note_items else ""}
{charts}
<p><small>Generated {e(clock.format_moment(generated_at, tz))} by Psychopathology Assistant. Confidential clinical information.</small></p>
</body></html>
"""
