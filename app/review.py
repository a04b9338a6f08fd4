"""Session review: everything the review page and the printable report show, computed from the store in one place."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd
import plotly.graph_objects as go

from app import analytics, charts, exports, sessions
from app import markers as event_markers
from store.api import Store
from store.markers import Marker
from store.models import Annotation, Clinician, Patient, Session

BaselineSource = Literal["none", "first_minute", "session"]
CALIBRATION_SECONDS = 60.0


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

    @property
    def start(self) -> pd.Timestamp | None:
        """The timeline's zero: where `t` counts from (see analytics.readings_frame)."""
        if not self.frame.empty:
            return self.frame["captured_at"].iloc[0] - pd.Timedelta(seconds=float(self.frame["t"].iloc[0]))
        return None if self.session.started_at is None else pd.Timestamp(self.session.started_at).tz_convert("UTC")

    def figures(self) -> list[tuple[str, go.Figure]]:
        origin = event_markers.timeline_origin(self.session, self.frame)
        found = [
            ("Timeline (smoothed), dominant emotion and valence", event_markers.add_to_figure(charts.review_figure(self.smoothed, self.annotations, self.summary.peaks, self.start), self.markers, origin)),
            ("Dominant-emotion distribution", charts.distribution_figure(self.summary.distribution)),
        ]
        if self.baseline is not None:
            found.append((f"Change against the baseline ({self.baseline_label})", event_markers.add_to_figure(charts.baseline_figure(analytics.change_from_baseline(self.smoothed, self.baseline)), self.markers, origin)))
        return found


def baseline(store: Store, session: Session, frame: pd.DataFrame, source: BaselineSource, baseline_session_id: uuid.UUID | None = None) -> tuple[dict[str, float] | None, str]:
    """The patient's neutral baseline: the first minute of this session, or the mean of a calibration session."""
    if source == "first_minute":
        calm = frame[frame["t"] <= frame["t"].iloc[0] + CALIBRATION_SECONDS] if not frame.empty else frame
        return analytics.baseline_from(calm), "first minute of this session"
    if source == "session" and baseline_session_id is not None:
        calibration = store.get_session(baseline_session_id)
        return analytics.baseline_from(sessions.session_frame(store, calibration)), f"session of {calibration.started_at:%Y-%m-%d}" if calibration.started_at else "calibration session"
    return None, ""


def build(
    store: Store,
    session: Session,
    smoothing_s: float = 5.0,
    baseline_source: BaselineSource = "none",
    baseline_session_id: uuid.UUID | None = None,
) -> Review:
    frame = sessions.session_frame(store, session)
    smoothed = analytics.smooth(frame, smoothing_s)
    base, label = baseline(store, session, frame, baseline_source, baseline_session_id)
    return Review(
        session=session,
        frame=frame,
        smoothed=smoothed,
        summary=analytics.summarize(frame, smoothing_s),
        annotations=store.list_annotations(session.id),
        baseline=base,
        baseline_label=label,
        markers=event_markers.visible_markers(store, session),
    )


def report(store: Store, review: Review, patient: Patient, clinician: Clinician) -> str:
    """The printable HTML report; the export is audited."""
    origin = review.start.to_pydatetime() if review.start is not None else None
    html = exports.session_report_html(patient, review.session, clinician, review.summary, review.figures(), review.annotations, origin=origin)
    store.audit("export_report", "session", str(review.session.id))
    return html


def readings_csv(store: Store, review: Review) -> bytes:
    data = exports.readings_csv(review.frame)
    store.audit("export_csv", "session", str(review.session.id))
    return data
