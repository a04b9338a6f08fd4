"""Treatment progress: one point per session of a patient (mean emotion proportions from the store's aggregate), trends."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pandas as pd

from app import analytics, clock, sessions
from fer.labels import LABELS
from store.api import Store


@dataclass(frozen=True)
class Progress:
    frame: pd.DataFrame  # analytics.progress_frame: one row per session with readings, oldest first
    trends: dict[str, analytics.Trend]

    @property
    def sessions(self) -> int:
        return len(self.frame)


def patient_progress(store: Store, patient_id: uuid.UUID) -> Progress:
    """One point per session with readings, each with block-bootstrap intervals (so the page can show how uncertain
    each session's mean is), and the trends across sessions."""
    points = []
    for index, session in enumerate(store.list_sessions(patient_id)):
        frame = sessions.session_frame(store, session)
        if frame.empty:
            continue
        when = frame["captured_at"].iloc[0].to_pydatetime()  # a session imported from an old video is dated by its readings
        points.append(analytics.session_point_from_frame(session.id, when, frame, seed=index))
    frame = analytics.progress_frame(points)
    return Progress(frame, analytics.progress_trends(frame))


def trend_sentence(progress: Progress) -> str:
    """A plain-language line for the clinician. A change is called a trend only when the 95 % interval of its slope
    excludes zero; anything else is said to be indistinguishable from session-to-session variation."""
    if progress.sessions < 3:
        return "At least three sessions with readings are needed before a trend can be told apart from noise."
    moving = [
        f"{name} {t.direction} ({t.slope:+.3f} per session, 95 % interval {t.slope_low:+.3f} to {t.slope_high:+.3f})"
        for name, t in progress.trends.items()
        if t.significant
    ]
    if not moving:
        return f"No clear trend across these {progress.sessions} sessions: every change is within session-to-session variation (95 % interval of the slope includes zero)."
    return "Trends across sessions: " + "; ".join(moving) + "."


def progress_table(progress: Progress, tz: str | None = None) -> pd.DataFrame:
    """The progress rows with headings in words and each mean with its 95 % interval."""
    rows = []
    for _, row in progress.frame.iterrows():
        record = {"Session": int(row["session"]), "Date": clock.format_moment(row["started_at"], tz, seconds=False), "Readings": int(row["readings"])}
        for name in (*LABELS, "valence"):
            low, high = row[f"{name}_low"], row[f"{name}_high"]
            interval = "" if pd.isna(low) else f" ({low:.2f} to {high:.2f})"
            record[name.capitalize()] = f"{row[name]:.2f}{interval}"
        rows.append(record)
    return pd.DataFrame(rows)
