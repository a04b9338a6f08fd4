"""No orphaned or duplicate sessions: one live session per patient, and live sessions nobody uses end by themselves.

Idle means: no reading captured and no note for `idle_minutes` (IDLE_SESSION_MINUTES, 30 by default)
since the later of the session's start and those events. Checked whenever a clinician opens the Sessions page or a
live dashboard (a clinic with the app closed has no session that needs ending sooner); each automatic end writes an
`auto_end` audit entry besides the store's own `end`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from store.api import Store
from store.errors import InvalidInput, StoreError
from store.models import Session


class AlreadyLive(InvalidInput):
    """The patient already has a live session: return to it or end it first."""

    def __init__(self, session: Session) -> None:
        super().__init__("This patient already has a live session: return to it, or end it before starting another.")
        self.session = session


def live_session_for_patient(store: Store, patient_id: uuid.UUID) -> Session | None:
    live = store.list_sessions(patient_id, status="live")
    return max(live, key=lambda s: s.started_at or s.created_at) if live else None


def require_no_live_session(store: Store, patient_id: uuid.UUID) -> None:
    if (session := live_session_for_patient(store, patient_id)) is not None:
        raise AlreadyLive(session)


def last_activity(store: Store, session: Session) -> datetime:
    moments = [session.started_at or session.created_at or datetime.now(timezone.utc)]
    aggregate = store.session_aggregate(session.id)
    if aggregate.last_at is not None:
        moments.append(aggregate.last_at)
    moments += [note.at for note in store.list_annotations(session.id)]
    return max(moments)


@dataclass(frozen=True)
class AutoEnd:
    session: Session
    idle_since: datetime


def end_idle_sessions(store: Store, idle_minutes: float, now: datetime | None = None) -> list[AutoEnd]:
    """End the acting clinician's live sessions idle for `idle_minutes`; returns what was ended."""
    if idle_minutes <= 0:
        return []
    now = now or datetime.now(timezone.utc)
    ended: list[AutoEnd] = []
    for session in store.list_sessions(status="live"):
        try:
            since = last_activity(store, session)
            if now - since < timedelta(minutes=idle_minutes):
                continue
            store.audit("auto_end", "session", str(session.id))
            ended.append(AutoEnd(store.end_session(session.id), since))
        except StoreError:
            continue  # another page ended it meanwhile, or the database hiccupped: the next visit tries again
    return ended
