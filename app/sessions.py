"""Session services: starting (in person, remote, from a recorded video), the live feed's cursor polling, annotations,
stopping, and reading a whole session back for review."""

from __future__ import annotations

import io
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd

from app import analytics, clock, lifecycle, quality, remote
from settings import Settings
from store.api import Store
from store.errors import InvalidInput, PermissionDenied
from store.models import Annotation, Device, Patient, Reading, Session

DEVICE_ONLINE_WITHIN = timedelta(minutes=2)  # the Pi agent sends a heartbeat every few seconds while it runs
READINGS_PAGE = 10_000
MAX_ANNOTATION_LENGTH = 2000


# --- starting and stopping ----------------------------------------------------------------------------------------------


def require_consent(patient: Patient) -> None:
    """Checked here for a clear message; the store enforces the same rule (PermissionDenied) whatever the caller."""
    if not patient.consent_facial_analysis:
        raise PermissionDenied(f"{patient.full_name} has not consented to facial analysis: record their consent first.")
    if patient.archived:
        raise PermissionDenied(f"{patient.full_name} is archived: restore the patient to start a session.")


def start_in_person(store: Store, patient: Patient, device_id: uuid.UUID | None) -> Session:
    require_consent(patient)
    lifecycle.require_no_live_session(store, patient.id)  # one live session per patient
    if device_id is None:
        raise InvalidInput("Choose the room's camera (a registered Pi device) for an in-person session.")
    return store.start_session(patient.id, "in_person", device_id=device_id)


@dataclass(frozen=True)
class RemoteStart:
    session: Session
    link: str  # shown once: only the token's hash is stored


def start_remote(store: Store, settings: Settings, patient: Patient, ttl: timedelta = timedelta(hours=2),
                 relay_video: bool = False) -> RemoteStart:
    """`relay_video`: the clinician asked to see the patient's camera on the dashboard (server mode only; refused
    silently when REMOTE_VIDEO_RELAY is off)."""
    require_consent(patient)
    lifecycle.require_no_live_session(store, patient.id)  # one live session per patient
    started = store.start_remote_session(patient.id, ttl=ttl)
    remote.choose_video_relay(settings, started.session.id, relay_video)
    return RemoteStart(started.session, remote.join_link(settings, started.token))


def qr_png(link: str) -> bytes:
    """A QR code of the join link, for a patient who opens it on a phone."""
    import qrcode

    image = qrcode.make(link, box_size=6, border=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def stop(store: Store, session_id: uuid.UUID) -> Session:
    return store.end_session(session_id)


def annotate(store: Store, session: Session, text: str, at: datetime | None = None) -> Annotation:
    """A clinician's note at a moment of the session (now, by default). "Now" only while the session runs: on an
    ended session a note must say the session time it refers to (`at`), within the session (see clock.note_moment)."""
    if at is None and store.get_session(session.id).status != "live":  # re-read: the page may show a stale session
        raise InvalidInput("This session has ended: add the note in the review, at the session time it refers to.")
    text = text.strip()
    if not text:
        raise InvalidInput("The note is empty.")
    if len(text) > MAX_ANNOTATION_LENGTH:
        raise InvalidInput(f"The note is longer than {MAX_ANNOTATION_LENGTH} characters.")
    return store.add_annotation(session.id, at or datetime.now(timezone.utc), text)


def offset_time(session: Session, seconds: float) -> datetime:
    """The moment `seconds` after the session start (for a note placed on the timeline after the fact)."""
    start = session.started_at or session.created_at or datetime.now(timezone.utc)
    return start + timedelta(seconds=seconds)


# --- reading back -------------------------------------------------------------------------------------------------------


def all_readings(store: Store, session_id: uuid.UUID) -> list[Reading]:
    readings: list[Reading] = []
    cursor = 0
    while True:
        page = store.readings_since(session_id, cursor, READINGS_PAGE)
        readings += page.readings
        if not page.readings or page.cursor == cursor:
            return readings
        cursor = page.cursor


def session_frame(store: Store, session: Session, keep: Callable[[Reading], bool] | None = None) -> pd.DataFrame:
    """The session's readings (those captured after Stop left out: see app.clock; those `keep` refuses, e.g. low
    quality, left out too) as an analytics frame."""
    readings = clock.readings_in_session(all_readings(store, session.id), session)
    if keep is not None:
        readings = [r for r in readings if keep(r)]
    return analytics.readings_frame(readings, start=session.started_at)


@dataclass
class LiveFeed:
    """The dashboard's state across its once-a-second refreshes: the cursor and every reading seen so far. Each poll
    asks the store only for rows inserted after the cursor."""

    session_id: uuid.UUID
    started_at: datetime | None
    cursor: int = 0
    frame: pd.DataFrame = field(default_factory=analytics.empty_frame)
    polls: int = 0
    figures: tuple | None = None  # the page's last drawn figures, reused while no reading arrives
    ended_at: datetime | None = None  # once stopped (live modes): readings captured later are not part of the session
    keep: Callable[[Reading], bool] | None = None  # e.g. quality.is_usable: others are counted but left out
    seen: int = 0  # readings of the session that arrived (in time), usable or not
    usable: int = 0  # of those, with a usable face (app.quality)
    last_captured_at: datetime | None = None  # newest reading of any quality: when a face was last seen

    def poll(self, store: Store) -> int:
        """Fetch new readings; returns how many were added to the frame."""
        page = store.readings_since(self.session_id, self.cursor, READINGS_PAGE)
        self.polls += 1
        if page.readings:
            in_time = [r for r in page.readings if self.ended_at is None or r.captured_at <= self.ended_at]
            self.seen += len(in_time)
            self.usable += sum(1 for r in in_time if quality.is_usable(r))
            if in_time:
                newest = max(r.captured_at for r in in_time)
                self.last_captured_at = newest if self.last_captured_at is None else max(newest, self.last_captured_at)
            kept = [r for r in in_time if self.keep is None or self.keep(r)]
            if kept:
                self.frame = analytics.append_readings(self.frame, kept, self.started_at)
            self.cursor = page.cursor
            return len(kept)
        return 0

    def stopped(self, session: Session) -> None:
        """The session ended: from now on (and for what was shown already) only readings captured before the end."""
        end = clock.session_end(session)
        if end is None or self.ended_at == end:
            return
        self.ended_at = end
        if not self.frame.empty:
            self.frame = self.frame[self.frame["captured_at"] <= pd.Timestamp(end)].reset_index(drop=True)
            self.figures = None

    @property
    def latest(self) -> pd.Series | None:
        return None if self.frame.empty else self.frame.iloc[-1]


# --- devices --------------------------------------------------------------------------------------------------------------


def device_online(device: Device, now: datetime | None = None) -> bool:
    now = now or datetime.now(timezone.utc)
    return device.last_heartbeat is not None and now - device.last_heartbeat <= DEVICE_ONLINE_WITHIN


def device_label(device: Device, now: datetime | None = None) -> str:
    state = "online" if device_online(device, now) else "offline"
    return f"{device.name} · {device.room} ({state})"


def assigned_sessions(sessions: list[Session]) -> dict[uuid.UUID, Session]:
    """Device id -> its live session (the one its agent is recording)."""
    return {s.device_id: s for s in sessions if s.device_id is not None and s.status == "live"}


# --- recorded video -------------------------------------------------------------------------------------------------------
# Uploads wait in this private folder while they are analysed, named with the serving process's id, and are deleted
# right after. A process that crashed mid-analysis leaves its file behind: the next process to start removes every
# upload whose process is gone (a video of a patient must not linger on the server).
UPLOAD_DIR = Path(tempfile.gettempdir()) / "psya-video-uploads"
UPLOAD_PREFIX = "upload-"


@dataclass(frozen=True)
class VideoImport:
    session: Session
    readings: int
    frames_read: int
    duration_s: float


ProgressFn = Callable[[float, str], None]  # (fraction done 0..1, message)


def upload_folder() -> Path:
    UPLOAD_DIR.mkdir(mode=0o700, exist_ok=True)
    os.chmod(UPLOAD_DIR, 0o700)
    return UPLOAD_DIR


def remove_stale_uploads(folder: Path | None = None) -> int:
    """Delete uploads left by processes that no longer run; returns how many were removed."""
    folder = folder or UPLOAD_DIR
    if not folder.is_dir():
        return 0
    removed = 0
    for path in folder.glob(f"{UPLOAD_PREFIX}*"):
        try:
            pid = int(path.name[len(UPLOAD_PREFIX):].split("-", 1)[0])
        except ValueError:
            pid = -1
        if pid == os.getpid() or (pid > 0 and _process_alive(pid)):
            continue
        try:
            path.unlink()
            removed += 1
        except OSError:
            pass
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def saved_upload(data: bytes | memoryview, filename: str) -> Iterator[Path]:
    """The uploaded bytes as a private temporary file (kept only while the block runs)."""
    suffix = Path(filename).suffix.lower()
    suffix = suffix if suffix.isascii() and suffix[1:].isalnum() and len(suffix) <= 6 else ".video"
    path = upload_folder() / f"{UPLOAD_PREFIX}{os.getpid()}-{uuid.uuid4().hex}{suffix}"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        yield path
    finally:
        path.unlink(missing_ok=True)


def import_video(
    store: Store,
    patient: Patient,
    video_path: Path,
    analyzer: object,
    fps: float = 4.0,
    on_progress: ProgressFn | None = None,
    display_name: str | None = None,
    recorded_at: datetime | None = None,
) -> VideoImport:
    """Analyse a recorded session video with the same pipeline as `python -m pi_agent analyze` (`fer.video`), then
    store the readings in a new recorded_video session (ended when done). The video is analysed before the session is
    created, so an unreadable or cut-short file leaves nothing behind (fer.VideoError, whose message names the file as
    `display_name`, never the server's temp path); the caller deletes the file afterwards (no video is kept)."""
    from fer.video import analyze_video

    require_consent(patient)

    def progress(done: int, total: int | None) -> None:
        if on_progress is not None:
            fraction = min(done / total, 1.0) if total else 0.0
            on_progress(fraction * 0.9, f"Analysed {done}/{total or '?'} frames")

    analysis = analyze_video(video_path, analyzer, fps=fps, on_progress=progress,  # type: ignore[arg-type]
                             display_name=display_name or "the video")
    session = store.start_session(patient.id, "recorded_video")
    if recorded_at is not None:  # issue 12: the session is dated when it was recorded, not uploaded
        session = store.retime_recorded_session(session.id, recorded_at)
    start = session.started_at or datetime.now(timezone.utc)
    readings = video_readings(analysis, session.id, start)
    inserted = 0
    try:
        for first in range(0, len(readings), 500):
            inserted += store.insert_readings(readings[first : first + 500])
            saved = min(first + 500, len(readings))
            if on_progress is not None:
                on_progress(0.9 + 0.1 * saved / len(readings), f"Saved {saved} of {len(readings)} readings")
    finally:
        session = store.end_session(session.id)
        if recorded_at is not None:  # and lasts as long as the video
            session = store.retime_recorded_session(session.id, start, start + timedelta(seconds=analysis.duration_s))
    return VideoImport(session, inserted, analysis.frames_read, analysis.duration_s)


def video_readings(analysis, session_id: uuid.UUID, video_started_at: datetime) -> list[Reading]:
    """The analysis rows as readings (source "video"), stamped `video_started_at + t`, ids stable across re-runs
    (the same rule as `python -m pi_agent analyze --session`)."""
    from fer.video import reading_id

    return [
        Reading(id=reading_id(session_id, analysis, n), session_id=session_id,
                captured_at=video_started_at + timedelta(seconds=row.t), probabilities=row.probabilities,
                source="video", box=row.box, faces=row.faces_in_frame)
        for n, row in enumerate(analysis.rows)
    ]


def default_video_analyzer(settings: Settings) -> object:
    """The `fer` video pipeline on the configured model. Raises fer's ModelNotFoundError/InvalidModelError with a message
    that says what to do."""
    import fer

    return fer.VideoPipeline.load(settings.model_path)


remove_stale_uploads()  # once per process, at start
