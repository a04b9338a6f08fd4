"""Is the patient there? What the live dashboard says about presence, from signals any source gives.

Sources write a reading only for a frame with a face, so the age of the newest reading is how long the patient's face
has not been seen. Whether the source itself is still there comes from `source_connected`: for a remote session, the
patient's stream registered in this server process (closing the tab or losing the network ends it); for an in-person
session, the Pi agent's heartbeat (every 30 s by default, so "camera offline" takes up to two heartbeats); for a remote
session analysed in the patient's browser, the batches its page sends about once a second while it is open (an empty
batch when no face is seen: batches that stop mean the page is gone, batches without readings mean no face). One
function answers per source.

States (checked in this order): ended; waiting (no reading yet); present (a reading in the last PRESENT_WITHIN_S);
disconnected (the source is gone); no face (the source is there, or unknown, but no usable face for that long).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal

from store.models import Device, Session

PRESENT_WITHIN_S = 3.0  # sources send a few readings a second: three seconds without one is noticeable
DEVICE_ALIVE_WITHIN = timedelta(seconds=75)  # two and a half Pi heartbeats (30 s)
BROWSER_ALIVE_WITHIN = timedelta(seconds=5)  # the patient's page sends a batch about once a second: five missed is gone

State = Literal["ended", "waiting", "present", "no_face", "disconnected"]


@dataclass(frozen=True)
class Presence:
    state: State
    message: str
    last_reading_age_s: float | None

    @property
    def current(self) -> bool:
        """Whether the newest reading still describes the patient (otherwise the page shows no "current" emotion)."""
        return self.state == "present"


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.0f} min"


def assess(session: Session, last_reading_at: datetime | None, source_connected: bool | None, now: datetime | None = None) -> Presence:
    """`source_connected`: True/False when the source's own signal says so, None when it cannot tell."""
    now = now or datetime.now(timezone.utc)
    age = None if last_reading_at is None else max((now - last_reading_at).total_seconds(), 0.0)
    if session.status == "ended":
        return Presence("ended", "The session has ended.", age)
    if age is None:
        if source_connected is False:
            why = "the patient has not joined yet" if session.mode == "remote" else "the room camera is offline (no recent heartbeat): check its agent"
            return Presence("waiting", f"Waiting for the first reading: {why}.", None)
        return Presence("waiting", "Waiting for the first reading…", None)
    if age <= PRESENT_WITHIN_S:
        return Presence("present", f"Patient present · last reading {age:.1f} s ago", age)
    if source_connected is False:
        who = "Patient disconnected" if session.mode == "remote" else "Room camera offline"
        return Presence("disconnected", f"{who} · last reading {_seconds(age)} ago", age)
    return Presence("no_face", f"No face for {_seconds(age)} · last reading {_seconds(age)} ago", age)


def device_connected(device: Device | None, now: datetime | None = None) -> bool | None:
    if device is None:
        return None
    now = now or datetime.now(timezone.utc)
    return device.last_heartbeat is not None and now - device.last_heartbeat <= DEVICE_ALIVE_WITHIN


def remote_connected(session_id: object) -> bool | None:
    """Whether the patient's stream for this session is open in this server process."""
    try:
        from app import webrtc_session
    except Exception:  # the WebRTC stack is optional for this check: unknown, not "gone"
        return None
    return webrtc_session.live_stream(session_id) is not None


def browser_connected(session_id: object, now: datetime | None = None) -> bool | None:
    """Whether the patient's page (browser analysis) still sends its batches; None before its first batch reached this
    server process (after a restart, or before the camera page loaded: unknown, not "gone")."""
    from app import browser_analysis

    last = browser_analysis.last_batch_at(session_id)  # type: ignore[arg-type]
    if last is None:
        return None
    return (now or datetime.now(timezone.utc)) - last <= BROWSER_ALIVE_WITHIN


def remote_analysed_frames(session_id: object) -> int | None:
    """Frames the patient's stream analysed so far (None when unknown)."""
    try:
        from app import webrtc_session

        stream = webrtc_session.live_stream(session_id)
        status = stream.status() if stream is not None else None
    except Exception:
        return None
    return None if status is None else int(status.frames_analysed)
