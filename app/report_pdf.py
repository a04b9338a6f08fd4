"""Session reports generated on the server without a browser (issue 15): a PDF (fpdf2, charts drawn by matplotlib as PNG)
and the printable HTML (the same charts as inline SVG: no plotly.js, no script, no CDN; tens of kilobytes instead of the
~4.9 MB of the old plotly report). This HTML is the only printable report: the review page's download, the small one of
the issue-15 exports and each session's report in the patient's export zip (app.patient_rights) all come from here.

Both carry: who and when (in the clinician's time zone), the summary, the timeline (smoothed probabilities with markers
and notes), the distribution, valence and arousal over time, the peaks, the change against the chosen baseline (or why it
could not be computed), the markers, the notes, the reactions to each marker type, and the decision-support disclaimer.
Every text from the database is escaped (HTML) or written as plain text (PDF).
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on the server; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from app import affect, analytics, clock, reactions  # noqa: E402
from app import markers as marker_service  # noqa: E402
from app.ui import DISCLAIMER, MODE_LABELS, format_duration  # noqa: E402
from fer.labels import LABELS  # noqa: E402
from store.markers import Marker  # noqa: E402
from store.models import Annotation, Clinician, Patient, Session  # noqa: E402

# The same colours as the app's charts (app/charts.py EMOTION_COLORS), repeated so this module does not restyle them.
COLORS = {"angry": "#d62728", "disgust": "#8c564b", "fear": "#9467bd", "happy": "#f2b701", "sad": "#1f77b4",
          "surprise": "#17becf", "neutral": "#7f7f7f"}
MARKER_COLOR = marker_service.MARKER_COLOR
FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"  # DejaVu ships with matplotlib: Unicode text in the PDF
SMOOTHING_S = 5.0
CHART_POINTS = 600  # at most this many points per line: about one per pixel of a printed chart, so a long session's
#                     report stays small (an hour at 2 readings/s drew 1 MB of SVG paths without it)


@dataclass(frozen=True)
class ReportContent:
    patient: Patient
    session: Session
    clinician: Clinician
    frame: pd.DataFrame  # readings frame
    annotations: list[Annotation]
    markers: list[Marker]
    origin: datetime  # the timeline's zero
    before_s: float = 30.0
    after_s: float = 30.0
    generated_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    tz: str | None = None  # the clinician's time zone (IANA name): every clock time of the report is written in it
    peaks: list[analytics.Peak] = field(default_factory=list)
    baseline: dict[str, float] | None = None  # the chosen neutral baseline's mean probabilities
    baseline_label: str = ""
    baseline_problem: str | None = None  # why the chosen baseline could not be computed (printed instead of its chart)

    @property
    def readings(self) -> int:
        return len(self.frame)

    @property
    def duration_s(self) -> float:
        return 0.0 if self.frame.empty else float(self.frame["t"].iloc[-1] - self.frame["t"].iloc[0])

    def distribution(self) -> dict[str, float]:
        if self.frame.empty:
            return {label: 0.0 for label in LABELS}
        shares = self.frame["dominant"].value_counts(normalize=True)
        return {label: float(shares.get(label, 0.0)) for label in LABELS}

    def mean_affect(self) -> tuple[float | None, float | None]:
        if self.frame.empty:
            return None, None
        values = affect.valence_arousal(self.frame).mean()
        return float(values["valence"]), float(values["arousal"])

    def summary_rows(self) -> list[tuple[str, str]]:
        distribution = self.distribution()
        valence, arousal = self.mean_affect()
        most = max(distribution, key=distribution.__getitem__) if self.readings else "—"
        return [
            ("Patient", self.patient.full_name),
            ("Date of birth", self.patient.date_of_birth.isoformat() if self.patient.date_of_birth else "—"),
            ("Diagnosis", self.patient.diagnosis or "—"),
            ("Clinician", self.clinician.display_name),
            ("Session", f"{MODE_LABELS.get(self.session.mode, self.session.mode)}, "
                        f"{clock.format_span(self.session.started_at, self.session.ended_at, self.tz)}"),
            ("Readings", f"{self.readings} over {format_duration(self.duration_s)}"),
            ("Most frequent expression", most),
            ("Mean valence / arousal", "—" if valence is None else f"{valence:+.2f} / {arousal:+.2f} (−1 … +1)"),
            ("Report generated", clock.format_moment(self.generated_at, self.tz)),
        ]

    def distribution_rows(self) -> list[tuple[str, str, str]]:
        """Per emotion: the share of readings it dominates and its mean probability."""
        distribution = self.distribution()
        means = self.frame[list(LABELS)].mean() if not self.frame.empty else {}
        return [(label, f"{distribution[label]:.1%}", f"{float(means.get(label, 0.0)):.3f}") for label in LABELS]

    def peak_rows(self) -> list[tuple[str, str, str, str]]:
        return [(format_duration(p.t), p.label, f"{p.value:.2f}", f"{p.duration_s:.0f} s") for p in self.peaks]

    def marker_rows(self) -> list[tuple[str, str, str]]:
        return [(format_duration(marker_service.offset_s(m, self.origin)), m.kind, m.text) for m in self.markers]

    def note_rows(self) -> list[tuple[str, str]]:
        return [(format_duration((n.at - self.origin).total_seconds()), n.text) for n in self.annotations]

    def reaction_rows(self) -> list[reactions.Reaction]:
        """Per marker type: valence and arousal change (the full table is in the app)."""
        found: list[reactions.Reaction] = []
        for kind in sorted({m.kind for m in self.markers}):
            times = [marker_service.offset_s(m, self.origin) for m in self.markers if m.kind == kind]
            pooled = reactions.pooled_reactions([(self.frame, times)], self.before_s, self.after_s, kind)
            found += [r for r in pooled if r.measure in ("valence", "arousal")]
        return found


PEAK_DEFINITION = (f"A peak: an emotion at or above {analytics.PEAK_HEIGHT:.0%} for at least "
                   f"{analytics.PEAK_MIN_DURATION_S:g} s, rising at least {analytics.PEAK_PROMINENCE:.0%} above the "
                   "readings around it, found on the readings (not the smoothed lines).")


def content_from_review(review, patient: Patient, clinician: Clinician, before_s: float = 30.0,
                        after_s: float = 30.0, tz: str | None = None) -> ReportContent:
    """From app.review.Review (what the review page shows)."""
    return ReportContent(patient=patient, session=review.session, clinician=clinician, frame=review.frame,
                         annotations=list(review.annotations), markers=list(review.markers),
                         origin=marker_service.timeline_origin(review.session, review.frame), before_s=before_s,
                         after_s=after_s, tz=tz, peaks=list(review.summary.peaks), baseline=review.baseline,
                         baseline_label=review.baseline_label, baseline_problem=review.baseline_problem)


# --- charts (matplotlib) ---------------------------------------------------------------------------------------------------


def _thinned(frame: pd.DataFrame, max_points: int = CHART_POINTS) -> pd.DataFrame:
    """Means over equal stretches of `t` when there are more rows than `max_points` (charts only; every number in the
    report's tables comes from all readings)."""
    if len(frame) <= max_points:
        return frame
    span = float(frame["t"].iloc[-1] - frame["t"].iloc[0]) or 1.0
    bins = ((frame["t"] - frame["t"].iloc[0]) / span * (max_points - 1)).round().astype(int)
    return frame.groupby(bins.to_numpy()).mean(numeric_only=True).reset_index(drop=True)


def _smoothed(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return frame
    indexed = frame.set_index(pd.to_datetime(frame["captured_at"], utc=True))
    rolled = indexed[list(LABELS)].rolling(pd.Timedelta(seconds=SMOOTHING_S)).mean()
    return _thinned(pd.concat([frame[["t"]].reset_index(drop=True), rolled.reset_index(drop=True)], axis=1))


def _mark_events(ax, content: ReportContent, label_them: bool) -> None:
    for marker in content.markers:
        x = marker_service.offset_s(marker, content.origin)
        ax.axvline(x, color=MARKER_COLOR, linestyle=":", linewidth=1.2)
        if label_them:
            # "$" would start matplotlib's mathtext
            ax.annotate(marker.kind.replace("$", r"\$"), (x, 1.0), xycoords=("data", "axes fraction"), rotation=90,
                        fontsize=7, color=MARKER_COLOR, va="top", ha="right")
    for note in content.annotations:
        ax.axvline((note.at - content.origin).total_seconds(), color="#444444", linestyle="--", linewidth=0.8, alpha=0.6)


def _plot_emotion_lines(ax, frame: pd.DataFrame, linewidth: float, legend_above: float) -> None:
    """One line per emotion against `t`, in the app's colours, with a one-row legend above the axes."""
    if frame.empty:
        return
    for label in LABELS:
        ax.plot(frame["t"], frame[label], color=COLORS[label], linewidth=linewidth, label=label)
    ax.legend(ncol=7, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, legend_above), frameon=False)


def timeline_chart(content: ReportContent):
    smoothed = _smoothed(content.frame)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.2), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    _plot_emotion_lines(top, smoothed, linewidth=1.2, legend_above=1.18)
    top.set_ylim(0, 1.05)
    top.set_ylabel("probability (5 s mean)")
    _mark_events(top, content, label_them=True)
    if not content.frame.empty:
        values = affect.valence_arousal(content.frame).rolling(9, min_periods=1, center=True).mean()
        values["t"] = content.frame["t"].to_numpy()
        rolled = _thinned(values)
        bottom.plot(rolled["t"], rolled["valence"], color="#2ca02c", linewidth=1.2, label="valence")
        bottom.plot(rolled["t"], rolled["arousal"], color="#ff7f0e", linewidth=1.2, label="arousal")
        bottom.legend(fontsize=7, loc="lower right", frameon=False)
    bottom.axhline(0, color="black", linewidth=0.6)
    bottom.set_ylim(-1, 1)
    bottom.set_ylabel("valence / arousal")
    bottom.set_xlabel("seconds since start (dotted: markers, dashed: notes)")
    _mark_events(bottom, content, label_them=False)
    fig.tight_layout()
    return fig


def distribution_chart(content: ReportContent):
    distribution = content.distribution()
    fig, ax = plt.subplots(figsize=(9, 2.6))
    ax.bar(list(LABELS), [distribution[label] for label in LABELS], color=[COLORS[label] for label in LABELS])
    for index, label in enumerate(LABELS):
        ax.text(index, distribution[label] + 0.02, f"{distribution[label]:.0%}", ha="center", fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("share of readings (dominant)")
    fig.tight_layout()
    return fig


def baseline_chart(content: ReportContent):
    """Per emotion, the smoothed probability minus the baseline's (above 0: more than at rest)."""
    smoothed = _smoothed(content.frame)
    fig, ax = plt.subplots(figsize=(9, 2.8))
    if not smoothed.empty and content.baseline is not None:
        _plot_emotion_lines(ax, analytics.change_from_baseline(smoothed, content.baseline), linewidth=1.0, legend_above=1.2)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_ylim(-1, 1)
    ax.set_ylabel("change vs baseline")
    ax.set_xlabel("seconds since start")
    _mark_events(ax, content, label_them=False)
    fig.tight_layout()
    return fig


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=150)
    plt.close(fig)
    return buffer.getvalue()


def _svg(fig) -> str:
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text stays text: smaller, searchable
        fig.savefig(buffer, format="svg")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and DOCTYPE: the SVG goes inline in HTML


# --- PDF -----------------------------------------------------------------------------------------------------------------


def session_report_pdf(content: ReportContent) -> bytes:
    from fpdf import FPDF

    pdf = FPDF(format="A4", unit="mm")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_font("DejaVu", "", str(FONT_DIR / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
    pdf.set_title("Session report")
    pdf.set_author(content.clinician.display_name)
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin

    def heading(text: str) -> None:
        pdf.ln(2)
        pdf.set_font("DejaVu", "B", 12)
        pdf.cell(0, 8, text, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", "", 9)

    pdf.set_font("DejaVu", "B", 16)
    pdf.cell(0, 10, "Session report", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 8)
    pdf.multi_cell(0, 4, DISCLAIMER, new_x="LMARGIN", new_y="NEXT")
    heading("Summary")
    with pdf.table(col_widths=(45, width - 45), text_align="LEFT", first_row_as_headings=False) as table:
        for name, value in content.summary_rows():
            table.row([name, value])
    heading("Timeline")
    pdf.image(io.BytesIO(_png(timeline_chart(content))), w=width)
    heading("Distribution of the dominant expression")
    pdf.image(io.BytesIO(_png(distribution_chart(content))), w=width)
    if content.baseline is not None:
        heading(f"Change against the baseline ({content.baseline_label})")
        pdf.image(io.BytesIO(_png(baseline_chart(content))), w=width)
    elif content.baseline_problem:
        heading("Baseline")
        pdf.multi_cell(0, 4.5, content.baseline_problem, new_x="LMARGIN", new_y="NEXT")
    heading("Peaks")
    peaks = content.peak_rows()
    if peaks:
        with pdf.table(col_widths=(20, 40, 20, width - 80), text_align="LEFT") as table:
            table.row(["At", "Emotion", "Highest", "Lasting"])
            for row in peaks:
                table.row(list(row))
    else:
        pdf.cell(0, 6, "No peaks.", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 7)
    pdf.multi_cell(0, 3.5, PEAK_DEFINITION, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 9)
    heading("Event markers")
    rows = content.marker_rows()
    if rows:
        with pdf.table(col_widths=(20, 50, width - 70), text_align="LEFT") as table:
            table.row(["At", "Type", "Text"])
            for row in rows:
                table.row(list(row))
    else:
        pdf.cell(0, 6, "No markers.", new_x="LMARGIN", new_y="NEXT")
    heading("Notes")
    notes = content.note_rows()
    if notes:
        with pdf.table(col_widths=(20, width - 20), text_align="LEFT") as table:
            table.row(["At", "Note"])
            for row in notes:
                table.row(list(row))
    else:
        pdf.cell(0, 6, "No notes.", new_x="LMARGIN", new_y="NEXT")
    heading(f"Reactions to events ({content.after_s:.0f} s after vs {content.before_s:.0f} s before)")
    found = content.reaction_rows()
    if found:
        with pdf.table(col_widths=(50, 22, 16, 16, 16, width - 120), text_align="LEFT") as table:
            table.row(["Marker type", "Measure", "Markers", "n before", "n after", "Change [95% Welch CI]"])
            for r in found:
                table.row([r.group, r.measure, str(r.events), str(r.n_before), str(r.n_after), _change_text(r)])
        pdf.set_font("DejaVu", "", 7)
        pdf.multi_cell(0, 3.5, "Readings close in time are not independent: the interval understates the uncertainty. "
                               "Valence/arousal mapping: Warriner, Kuperman & Brysbaert (2013); see docs/app.md.",
                       new_x="LMARGIN", new_y="NEXT")
    else:
        pdf.cell(0, 6, "No markers, so no reactions.", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("DejaVu", "B", 9)
    pdf.multi_cell(0, 4.5, DISCLAIMER, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _change_text(r: reactions.Reaction) -> str:
    if r.change is None:
        return "—"
    if r.ci_low is None:
        return f"{r.change:+.3f} (too few readings for an interval)"
    return f"{r.change:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]"


# --- small printable HTML --------------------------------------------------------------------------------------------------


PRINT_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0 1em}th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;"
    "vertical-align:top;font-size:13px}svg{max-width:100%;height:auto}.disclaimer{font-size:12px;color:#555}"
    ".notice{border:1px solid #c9a400;background:#fff8d6;padding:.6em 1em}small{color:#555}"
    "@page{size:A4;margin:15mm}"
    "@media print{body{margin:0;max-width:none}section,table,tr,svg{break-inside:avoid;page-break-inside:avoid}"
    "h2{break-after:avoid;page-break-after:avoid}.notice{background:none}}"
)


def session_report_html(content: ReportContent) -> str:
    """Self-contained and small: charts are inline SVG (no script, no CDN, nothing fetched when opened); prints on A4
    with no chart or table row split across pages."""
    e = html.escape

    def table(headers: list[str], rows: list[list[str]]) -> str:
        head = "".join(f"<th>{e(h)}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def section(title: str, *body: str) -> str:
        return f"<section><h2>{e(title)}</h2>{''.join(body)}</section>"

    summary = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in content.summary_rows())
    found = content.reaction_rows()
    if content.baseline is not None:
        baseline = section(f"Change against the baseline ({content.baseline_label})", _svg(baseline_chart(content)))
    elif content.baseline_problem:
        baseline = f"<p class='notice'>{e(content.baseline_problem)}</p>"
    else:
        baseline = ""
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Session report {e(clock.format_moment(content.session.started_at, content.tz))}</title>",
        f"<style>{PRINT_CSS}</style></head><body>",
        "<h1>Session report</h1>",
        f"<p class='notice'><strong>{e(DISCLAIMER)}</strong></p>",
        f"<h2>Summary</h2><table>{summary}</table>",
        section("Timeline", _svg(timeline_chart(content))),
        section("Distribution of the dominant expression", _svg(distribution_chart(content)),
                table(["Emotion", "Dominant in", "Mean probability"], [list(r) for r in content.distribution_rows()])),
        baseline,
        section("Peaks", table(["At", "Emotion", "Highest", "Lasting"], [list(r) for r in content.peak_rows()])
                if content.peaks else "<p>No peaks.</p>", f"<p><small>{e(PEAK_DEFINITION)}</small></p>"),
        section("Event markers", table(["At", "Type", "Text"], [list(r) for r in content.marker_rows()])
                if content.markers else "<p>No markers.</p>"),
        section("Notes", table(["At", "Note"], [list(r) for r in content.note_rows()])
                if content.annotations else "<p>No notes.</p>"),
        section(f"Reactions to events ({content.after_s:.0f} s after vs {content.before_s:.0f} s before)",
                table(["Marker type", "Measure", "Markers", "n before", "n after", "Change [95% Welch CI]"],
                      [[r.group, r.measure, str(r.events), str(r.n_before), str(r.n_after), _change_text(r)]
                       for r in found]) if found else "<p>No markers, so no reactions.</p>"),
        f"<p class='disclaimer'><strong>{e(DISCLAIMER)}</strong></p>",
        f"<p><small>Generated {e(clock.format_moment(content.generated_at, content.tz))} by Psychopathology Assistant. "
        "Confidential clinical information.</small></p>",
        "</body></html>",
    ]
    return "".join(parts)
