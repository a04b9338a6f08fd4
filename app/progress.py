"""Treatment progress: one point per session of a patient (mean emotion proportions from the store's aggregate), trends."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pandas as pd

from app import analytics
from store.api import Store


@dataclass(frozen=True)
class Progress:
    frame: pd.DataFrame  # analytics.progress_frame: one row per session with readings, oldest first
    trends: dict[str, analytics.Trend]

    @property
    def sessions(self) -> int:
        return len(self.frame)


def patient_progress(store: Store, patient_id: uuid.UUID) -> Progress:
    points = []
    for session in store.list_sessions(patient_id):
        aggregate = store.session_aggregate(session.id)
        when = aggregate.first_at or session.started_at  # a session imported from an old video is dated by its readings
        points.append(analytics.session_point(session.id, when, aggregate.readings, aggregate.mean_probabilities))
    frame = analytics.progress_frame(points)
    return Progress(frame, analytics.progress_trends(frame))


def trend_sentence(progress: Progress) -> str:
    """A plain-language line for the clinician (which emotions rise or fall across sessions)."""
    if progress.sessions < 2:
        return "At least two sessions with readings are needed for a trend."
    moving = [f"{name} {t.direction} ({t.slope:+.3f}/session)" for name, t in progress.trends.items() if t.direction != "stable"]
    return "Across sessions: " + ("; ".join(moving) if moving else "no emotion changes by more than 0.001 per session") + "."
