"""One session clock: which readings belong to a session, where its timeline starts and ends, and how its moments are
written in the clinician's time zone. No Streamlit, no database.

The rule: a live session (in person, remote) runs from `started_at` to `ended_at`. Readings captured after the
clinician pressed Stop are not part of it, whatever the database accepted (a late *arrival* of a reading captured in
time is fine: what counts is `captured_at`). The dashboard, the review and the CSV all read through
`readings_in_session`, so their counts agree. A recorded video's session is timed by its readings (the video's own
clock), so nothing is cut there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from store.api import Store
from store.errors import StoreError
from store.models import Reading, Session

LIVE_MODES = ("in_person", "remote")


# --- which readings belong to the session ------------------------------------------------------------------------------


def session_end(session: Session) -> datetime | None:
    """The moment after which nothing is part of the session (None while it runs, or for a recorded video)."""
    if session.mode not in LIVE_MODES or session.status != "ended":
        return None
    return session.ended_at


def readings_in_session(readings: Sequence[Reading], session: Session) -> list[Reading]:
    """The readings captured while the session ran: those captured after Stop are left out."""
    end = session_end(session)
    if end is None:
        return list(readings)
    return [r for r in readings if r.captured_at <= end]


def timeline_end_s(session: Session, origin: datetime | None) -> float | None:
    """Seconds from the timeline's zero (`origin`) to the session's end, for a chart axis that runs start to end."""
    end = session_end(session)
    if end is None or origin is None:
        return None
    return max((end - origin).total_seconds(), 0.0)


def session_offset_s(session: Session, moment: datetime) -> float:
    start = session.started_at or session.created_at or moment
    return (moment - start).total_seconds()


class OutsideSession(ValueError):
    """A note placed outside the session's timeline."""


def note_moment(session: Session, offset_s: float, duration_s: float | None) -> datetime:
    """The moment `offset_s` seconds into the session, for a note added afterwards; refused outside 0..duration."""
    if offset_s < 0 or (duration_s is not None and offset_s > duration_s + 0.5):
        limit = f"0:00 to {format_offset(duration_s)}" if duration_s is not None else "from 0:00"
        raise OutsideSession(f"The session time must lie within the session ({limit}).")
    start = session.started_at or session.created_at or datetime.now(timezone.utc)
    return start + timedelta(seconds=offset_s)


_OFFSET = re.compile(r"^\s*(?:(\d+):)?(\d{1,2}):(\d{2})\s*$|^\s*(\d+(?:\.\d+)?)\s*$")


def parse_offset(text: str) -> float:
    """"1:05" -> 65.0, "1:02:03" -> 3723.0, "42" -> 42.0; ValueError with a user-facing message otherwise."""
    match = _OFFSET.match(text or "")
    if not match:
        raise ValueError(f"“{text}” is not a session time: write minutes:seconds, e.g. 12:30.")
    if match.group(4) is not None:
        return float(match.group(4))
    hours, minutes, seconds = int(match.group(1) or 0), int(match.group(2)), int(match.group(3))
    if seconds >= 60 or (match.group(1) and minutes >= 60):
        raise ValueError(f"“{text}” is not a session time: seconds (and minutes after hours) run 00-59.")
    return float(hours * 3600 + minutes * 60 + seconds)


def format_offset(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


# --- the clinician's time zone -------------------------------------------------------------------------------------------

DEFAULT_TIME_ZONE = "UTC"


def valid_time_zone(name: str | None) -> bool:
    if not name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def zone(name: str | None) -> ZoneInfo:
    """The named IANA zone, or UTC for an unknown or empty name (a bad setting must not break a page)."""
    return ZoneInfo(name) if valid_time_zone(name) else ZoneInfo(DEFAULT_TIME_ZONE)


def time_zone_choices() -> list[str]:
    return sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/"))) + ["UTC"]


def format_moment(moment: datetime | None, tz: str | None, seconds: bool = True) -> str:
    """ "2026-12-02 14:03:12 CET" in the clinician's zone."""
    if moment is None:
        return "—"
    local = moment.astimezone(zone(tz))
    return local.strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")


def format_span(start: datetime | None, end: datetime | None, tz: str | None) -> str:
    """ "2026-12-02 14:03:12-14:43:50 CET" (the date once when both ends fall on the same local day)."""
    if start is None:
        return "—"
    local_start = start.astimezone(zone(tz))
    if end is None:
        return f"{local_start:%Y-%m-%d %H:%M:%S %Z} (still running)"
    local_end = end.astimezone(zone(tz))
    if local_end.date() == local_start.date() and local_end.tzname() == local_start.tzname():
        return f"{local_start:%Y-%m-%d %H:%M:%S}-{local_end:%H:%M:%S %Z}"
    return f"{local_start:%Y-%m-%d %H:%M:%S %Z} - {local_end:%Y-%m-%d %H:%M:%S %Z}"


def clinician_time_zone(store: Store, default: str) -> str:
    """The signed-in clinician's time zone, else the deployment's default (DEFAULT_TIME_ZONE), else UTC."""
    try:
        chosen = store.get_time_zone()
    except StoreError:
        chosen = None
    return chosen if valid_time_zone(chosen) else (default if valid_time_zone(default) else DEFAULT_TIME_ZONE)


def session_label(session: Session, tz: str | None, patient_name: str | None = None) -> str:
    """ "Ana · In person (Pi camera) · 2026-12-02 14:03:12-14:43:50 CET · ended" in the clinician's zone."""
    from app.ui import MODE_LABELS, STATUS_WORDS  # the words the pages use (app.ui loads Streamlit: imported late)

    who = f"{patient_name} · " if patient_name else ""
    start = session.started_at or session.created_at
    when = format_span(start, session.ended_at, tz) if session.status == "ended" else format_moment(start, tz)
    return f"{who}{MODE_LABELS.get(session.mode, session.mode)} · {when} · {STATUS_WORDS.get(session.status, session.status)}"
