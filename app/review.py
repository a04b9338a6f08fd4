"""Session review: everything the review page and the printable report (app.report_pdf) show, computed from the store in
one place."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd
import plotly.graph_objects as go

from app import analytics, charts, clock, exports, quality, sessions
from app import markers as event_markers
from store.api import Store
from store.markers import Marker
from store.models import Annotation, Session

BaselineSource = Literal["none", "first_minute", "session"]

VALENCE_HELP = (
    "Mean expected valence: each emotion's probability times the published valence of its name (Warriner, Kuperman & "
    "Brysbaert 2013), 0 = as a neutral face; about −0.85 (all sad) … +0.74 (all happy)."
)
AROUSAL_HELP = "Mean expected arousal, from the same published ratings: 0 = as calm as a neutral face; up to +0.78 (all surprise)."
PEAK_HELP = (
    f"Found on the readings, not on the smoothed lines: an emotion at or above {analytics.PEAK_HEIGHT:.0%} for at least "
    f"{analytics.PEAK_MIN_DURATION_S:g} s, rising at least {analytics.PEAK_PROMINENCE:.0%} above the readings around it."
)


@dataclass(frozen=True)
class Review:
    session: Session
    frame: pd.DataFrame  # raw readings
    smoothed: pd.DataFrame
    summary: analytics.SessionSummary
    annotations: list[Annotation]
    baseline: dict[str, float] | None = None
    baseline_label: str = ""
    markers: list[Marker] = field(default_factory=list)  # issue 15: only for the session's own clinician
    baseline_problem: str | None = None  # why the chosen baseline could not be computed (shown instead of a chart)
    quality: quality.QualitySummary | None = None  # usable-face readings of all captured in time
    low_quality_excluded: bool = False

    @property
    def start(self) -> pd.Timestamp | None:
        """The timeline's zero: where `t` counts from (see analytics.readings_frame)."""
        if not self.frame.empty:
            return self.frame["captured_at"].iloc[0] - pd.Timedelta(seconds=float(self.frame["t"].iloc[0]))
        return None if self.session.started_at is None else pd.Timestamp(self.session.started_at).tz_convert("UTC")

    @property
    def duration_s(self) -> float | None:
        """The timeline's length: start to end for a live session, to the last reading for a recorded video."""
        end = clock.timeline_end_s(self.session, None if self.start is None else self.start.to_pydatetime())
        if end is not None:
            return end
        return None if self.frame.empty else float(self.frame["t"].iloc[-1])

    def figures(self) -> list[tuple[str, go.Figure]]:
        origin = event_markers.timeline_origin(self.session, self.frame)
        found = [
            ("Timeline (smoothed), dominant emotion and valence", event_markers.add_to_figure(charts.review_figure(self.smoothed, self.annotations, self.summary.peaks, self.start, x_end=self.duration_s), self.markers, origin)),
            ("Dominant-emotion distribution", charts.distribution_figure(self.summary.distribution)),
        ]
        if self.baseline is not None:
            found.append((f"Change against the baseline ({self.baseline_label})", event_markers.add_to_figure(charts.baseline_figure(analytics.change_from_baseline(self.smoothed, self.baseline)), self.markers, origin)))
        return found


def baseline(store: Store, session: Session, frame: pd.DataFrame, source: BaselineSource, baseline_session_id: uuid.UUID | None = None) -> analytics.Baseline:
    """The patient's neutral baseline: the first minute of this session, or the mean of a calibration session; or why
    it cannot be computed."""
    if source == "first_minute":
        return analytics.first_minute_baseline(frame)
    if source == "session":
        if baseline_session_id is None:
            return analytics.Baseline(None, "calibration session", "Choose the calibration session.")
        calibration = store.get_session(baseline_session_id)
        label = f"session of {calibration.started_at:%Y-%m-%d}" if calibration.started_at else "calibration session"
        return analytics.session_baseline(sessions.session_frame(store, calibration), label)
    return analytics.Baseline(None, "")


def build(
    store: Store,
    session: Session,
    smoothing_s: float = 5.0,
    baseline_source: BaselineSource = "none",
    baseline_session_id: uuid.UUID | None = None,
    exclude_low_quality: bool = True,
) -> Review:
    """Everything the review shows. Low-quality readings (app.quality: tiny face, at the frame edge, turned away) are
    counted, and left out of every number and chart when `exclude_low_quality` (the EXCLUDE_LOW_QUALITY setting)."""
    readings = clock.readings_in_session(sessions.all_readings(store, session.id), session)
    checked = quality.summarize(readings)
    if exclude_low_quality:
        readings = [r for r in readings if quality.is_usable(r)]
    frame = analytics.readings_frame(readings, start=session.started_at)
    smoothed = analytics.smooth(frame, smoothing_s)
    base = baseline(store, session, frame, baseline_source, baseline_session_id)
    return Review(
        session=session,
        frame=frame,
        smoothed=smoothed,
        summary=analytics.summarize(frame),
        annotations=store.list_annotations(session.id),
        markers=event_markers.visible_markers(store, session),
        baseline=base.values,
        baseline_label=base.label,
        baseline_problem=base.problem,
        quality=checked,
        low_quality_excluded=exclude_low_quality,
    )


def add_note(store: Store, review: Review, session_time: str, text: str) -> Annotation:
    """A note added in the review, at the session time it refers to ("12:30"), which must lie within the session."""
    offset = clock.parse_offset(session_time)
    moment = clock.note_moment(review.session, offset, review.duration_s)
    return sessions.annotate(store, review.session, text, at=moment)


def readings_csv(store: Store, review: Review) -> bytes:
    data = exports.readings_csv(review.frame)
    store.audit("export_csv", "session", str(review.session.id))
    return data
