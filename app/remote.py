"""Remote sessions, patient side: join-token checks, frame analysis at a bounded rate, and batched reading writes.

Nothing here imports Streamlit or WebRTC: `app/webrtc_session.py` glues these services to `streamlit-webrtc`, and
`pages/join.py` only renders. The flow for one patient's browser:

    camera frame --(WebRTC thread: RateLimiter, LatestFrameSlot.put)--> analysis thread --(fer.analyze)-->
    ReadingBatchWriter.add --(writer thread, about once a second)--> store.insert_remote_readings(token, batch)

Why this shape: the WebRTC thread must return every frame at once (the patient's own video must not stutter), the model
must run at most `settings.remote_analysis_fps` times a second per patient (so several patients fit on one server), and
the database must see one batched, idempotent insert a second rather than one per frame. Every buffer is bounded: the
frame slot holds one frame (newer frames replace older ones), the writer holds at most `max_pending` readings.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Generic, Protocol, TypeVar
from urllib.parse import urlencode

import numpy as np

from settings import Settings
from store.api import Store
from store.errors import InvalidInput, InvalidToken, SessionNotLive, StoreError, StoreUnavailable
from store.models import Reading, Session

log = logging.getLogger(__name__)

JOIN_PAGE_PATH = "join"  # the url_path of pages/join.py in st.navigation

INVALID_LINK_MESSAGE = (
    "This session link is not valid. It may have expired, or the session has already ended. "
    "Please ask your clinician for a new link."
)
STORE_DOWN_MESSAGE = "The service cannot be reached right now. Please wait a moment and reload this page."


# --- join links and token checks -------------------------------------------------------------------------------------


def join_link(settings: Settings, token: str) -> str:
    """The link the clinician sends to the patient: `<public_base_url>/join?token=...`."""
    return f"{settings.public_base_url}/{JOIN_PAGE_PATH}?{urlencode({'token': token})}"


@dataclass(frozen=True)
class JoinCheck:
    """The result of checking a join token: a live session, or a message to show instead of the camera."""

    session: Session | None
    message: str = ""
    retry_later: bool = False  # the store was unreachable: the link may be fine, try again

    @property
    def ok(self) -> bool:
        return self.session is not None


def check_join_token(store: Store, token: str | None) -> JoinCheck:
    """Look the token up; unknown, expired and ended tokens all read the same to the patient (no oracle for guessing)."""
    token = (token or "").strip()
    if not token:
        return JoinCheck(None, INVALID_LINK_MESSAGE)
    try:
        return JoinCheck(store.session_for_token(token))
    except InvalidToken:
        return JoinCheck(None, INVALID_LINK_MESSAGE)
    except StoreUnavailable:
        return JoinCheck(None, STORE_DOWN_MESSAGE, retry_later=True)


# --- bounded-rate frame intake -----------------------------------------------------------------------------------------


class RateLimiter:
    """Lets at most `max_per_second` events through; the first one passes at once.

    Thread-safe. Events that arrive too early are refused (dropped), never delayed: a late analysis is worth less than
    a fresh one, and waiting would make the WebRTC thread stall the patient's video.
    """

    def __init__(self, max_per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not (max_per_second > 0 and math.isfinite(max_per_second)):
            raise ValueError(f"max_per_second must be a positive number, got {max_per_second!r}")
        self.interval_s = 1.0 / max_per_second
        self._clock = clock
        self._next_allowed: float | None = None
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        now = self._clock()
        with self._lock:
            if self._next_allowed is not None and now < self._next_allowed:
                return False
            # Schedule from the previous slot, not from `now`, so jittery frame arrival still averages the full rate;
            # but bank at most half a slot of credit, so a pause is never followed by a burst.
            base = now if self._next_allowed is None else max(self._next_allowed, now - self.interval_s / 2)
            self._next_allowed = base + self.interval_s
            return True


T = TypeVar("T")


class LatestFrameSlot(Generic[T]):
    """A one-item mailbox between the WebRTC thread and the analysis thread: `put` replaces whatever was waiting.

    This is the "drop frames, never queue" rule: memory per patient is one frame whatever the load.
    """

    def __init__(self) -> None:
        self._item: T | None = None
        self._has_item = False
        self._closed = False
        self._cond = threading.Condition()
        self.replaced = 0  # frames that were overwritten before the analysis thread took them

    def put(self, item: T) -> None:
        with self._cond:
            if self._has_item:
                self.replaced += 1
            self._item, self._has_item = item, True
            self._cond.notify()

    def take(self, timeout: float | None = None) -> T | None:
        """The waiting item, or None after `timeout` seconds or once closed."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._has_item or self._closed, timeout):
                return None
            if not self._has_item:
                return None
            item, self._item, self._has_item = self._item, None, False
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


# --- batched writes --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WriterStatus:
    written: int  # readings the store accepted as new
    pending: int  # readings waiting for the next (or a retried) write
    failed_attempts: int  # writes that raised and will be retried
    rejected: int  # readings the store refused as invalid input (dropped: they can never be stored)
    refused: int  # readings captured after the session ended or the link closed (the store no longer takes them)
    overflowed: int  # oldest readings dropped because the store was down longer than max_pending allows
    last_error: str
    closed_reason: str  # non-empty once the session no longer accepts readings (token expired, session ended)


class ReadingBatchWriter:
    """Collects readings and writes them in batches, about once every `interval_s`, from its own thread.

    `write(batch)` is called with up to `max_batch` readings. When it raises StoreUnavailable (or any unexpected
    error), the same readings stay at the front of the queue and are retried after a back-off: nothing is lost, and
    because every Reading carries a client UUID the store skips any that an earlier, half-acknowledged attempt already
    stored. When the clinician ends the session (or the link expires) the store keeps taking readings captured by the
    end, for a while; the first refusal (InvalidToken / SessionNotLive) closes the writer, after storing whatever part
    of that batch was captured in time (`_accepted_prefix`).
    """

    def __init__(
        self,
        write: Callable[[Sequence[Reading]], int],
        interval_s: float = 1.0,
        max_batch: int = 500,
        max_pending: int = 36_000,  # hours of readings at a few per second: bounded, yet far beyond a normal outage
        max_backoff_s: float = 10.0,
        name: str = "reading-writer",
        on_closed: Callable[[str], None] | None = None,
    ) -> None:
        self._write = write
        self.interval_s = interval_s
        self.max_batch = max_batch
        self.max_pending = max_pending
        self.max_backoff_s = max_backoff_s
        self._on_closed = on_closed
        self._pending: list[Reading] = []
        self._cond = threading.Condition()
        self._stopping = False
        self._written = 0
        self._failed_attempts = 0
        self._rejected = 0
        self._refused = 0
        self._overflowed = 0
        self._last_error = ""
        self._closed_reason = ""
        self._last_write_at = -math.inf
        self._retry_at = -math.inf
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # Called from the analysis thread.
    def add(self, reading: Reading) -> bool:
        """Queue one reading; False when the writer is closed or stopping (the reading is not kept)."""
        with self._cond:
            if self._closed_reason or self._stopping:
                return False
            self._pending.append(reading)
            if len(self._pending) > self.max_pending:
                drop = len(self._pending) - self.max_pending
                del self._pending[:drop]
                self._overflowed += drop
            self._cond.notify()
            return True

    def status(self) -> WriterStatus:
        with self._cond:
            return WriterStatus(
                written=self._written,
                pending=len(self._pending),
                failed_attempts=self._failed_attempts,
                rejected=self._rejected,
                refused=self._refused,
                overflowed=self._overflowed,
                last_error=self._last_error,
                closed_reason=self._closed_reason,
            )

    def stop(self, timeout: float = 5.0) -> WriterStatus:
        """Write what is pending (retrying until `timeout`), then end the thread. Returns the final status."""
        with self._cond:
            self._stopping = True
            self._stop_deadline = time.monotonic() + timeout
            self._cond.notify()
        self._thread.join(timeout + 1.0)
        return self.status()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _due(self, now: float) -> bool:
        """Whether the writer thread should write now (called with the lock held)."""
        if not self._pending or self._closed_reason:
            return False
        if now < self._retry_at:
            return False
        # The first reading of a quiet spell goes out at once (fast first reading on the dashboard); then one write per
        # interval, which batches the readings that arrive meanwhile.
        return self._stopping or now - self._last_write_at >= self.interval_s

    def _wait_s(self, now: float) -> float:
        if not self._pending:
            return self.interval_s
        return max(0.0, max(self._retry_at, self._last_write_at + self.interval_s) - now)

    def _run(self) -> None:
        backoff = 0.0
        while True:
            with self._cond:
                while True:
                    now = time.monotonic()
                    if self._closed_reason:
                        return
                    if self._stopping and (not self._pending or now >= self._stop_deadline):
                        return
                    if self._due(now):
                        break
                    wait = self._wait_s(now)
                    if self._stopping:
                        wait = min(wait, max(0.0, self._stop_deadline - now))
                    self._cond.wait(wait)
                batch = list(self._pending[: self.max_batch])
                self._last_write_at = now
            try:
                try:
                    self._write(batch)
                    stored, refusal = batch, None
                except (InvalidToken, SessionNotLive) as exc:
                    stored, refusal = self._accepted_prefix(batch, exc)
            except InvalidInput as exc:
                # A reading the store can never accept would block the queue forever: drop this batch, say so loudly.
                log.error("store rejected %d remote readings as invalid: %s", len(batch), exc)
                self._finish_batch(batch, written=0, rejected=len(batch), error=f"rejected: {exc}")
                continue
            except Exception as exc:  # noqa: BLE001 - StoreUnavailable or a bug: keep the batch, retry later
                backoff = min(self.max_backoff_s, max(0.5, backoff * 2))
                with self._cond:
                    self._failed_attempts += 1
                    self._last_error = f"{type(exc).__name__}: {exc}"
                    self._retry_at = time.monotonic() + backoff
                if not isinstance(exc, StoreError):
                    log.exception("unexpected error writing remote readings; will retry")
                else:
                    log.warning("writing %d remote readings failed (%s); retrying in %.1fs", len(batch), exc, backoff)
                continue
            backoff = 0.0
            self._finish_batch(stored, written=len(stored), rejected=0, error="")
            if refusal is not None:
                self._close(f"{type(refusal).__name__}: {refusal}")
                return

    def _accepted_prefix(self, batch: list[Reading], refusal: StoreError) -> tuple[list[Reading], StoreError]:
        """The session ended (or its link closed) while this batch was on its way. The store still takes readings
        captured by the end (not one after it: stop means stop) but refuses the batch as a whole, so store the longest
        accepted prefix in capture order (bisection: a few round trips) and report the refusal for the rest.

        Transient errors propagate (the caller retries the whole batch; what was stored is skipped by UUID)."""
        ordered = sorted(batch, key=lambda r: r.captured_at)
        stored, longest = 0, len(ordered) - 1  # ordered[:stored] is in the store; the whole batch was refused
        while stored < longest:
            end = (stored + longest + 1) // 2
            try:
                self._write(ordered[stored:end])
                stored = end
            except (InvalidToken, SessionNotLive) as exc:
                refusal, longest = exc, end - 1
        return ordered[:stored], refusal

    def _finish_batch(self, batch: list[Reading], written: int, rejected: int, error: str) -> None:
        with self._cond:
            # The batch is still the head of the queue: only this thread removes readings (overflow trims the head
            # too, so compare ids rather than trusting positions).
            done = {r.id for r in batch}
            self._pending = [r for r in self._pending if r.id not in done]
            self._written += written
            self._rejected += rejected
            self._last_error = error
            self._retry_at = -math.inf

    def _close(self, reason: str) -> None:
        with self._cond:
            self._closed_reason = reason
            self._last_error = reason
            # Everything still queued was captured later than what the store just refused: it cannot be stored.
            self._refused += len(self._pending)
            self._pending = []
        log.info("remote reading writer closed: %s", reason)
        if self._on_closed:
            self._on_closed(reason)


# --- video frames the server received, per session (the proof for browser mode: zero) ------------------------------

_video_frames: dict[uuid.UUID, int] = {}
_video_frames_lock = threading.Lock()


def count_video_frame(session_id: uuid.UUID) -> None:
    """Called for every camera frame that reaches this server process (server mode's WebRTC path)."""
    with _video_frames_lock:
        _video_frames[session_id] = _video_frames.get(session_id, 0) + 1


def video_frames_received(session_id: uuid.UUID) -> int:
    """Camera frames this server process received for `session_id`: 0 for a session analysed in the browser."""
    with _video_frames_lock:
        return _video_frames.get(session_id, 0)


# --- the clinician's per-session choice of the video relay (server mode, REMOTE_VIDEO_RELAY=on) ------------------------
# Kept in this server process, like the relay itself (it hands the patient's track from their WebRTC connection to the
# clinician's in the same process). After a restart every session is unrelayed, and the rejoining patient is told so.

_relayed_sessions: set[uuid.UUID] = set()
_relayed_sessions_lock = threading.Lock()


def choose_video_relay(settings: Settings, session_id: uuid.UUID, relay: bool) -> bool:
    """Record the clinician's choice for `session_id`; returns whether the session is relayed (never when
    REMOTE_VIDEO_RELAY is off)."""
    relay = bool(relay and settings.remote_video_relay)
    with _relayed_sessions_lock:
        (_relayed_sessions.add if relay else _relayed_sessions.discard)(session_id)
    return relay


def video_relayed(settings: Settings, session_id: uuid.UUID) -> bool:
    """Whether the patient's camera of `session_id`, when it is streamed to this server, is shown to the clinician."""
    if not settings.remote_video_relay:
        return False
    with _relayed_sessions_lock:
        return session_id in _relayed_sessions


# --- analysis ---------------------------------------------------------------------------------------------------------


class FaceResultLike(Protocol):
    """What `fer.analyze` returns per face (kept structural so this module does not import the vision stack)."""

    box: tuple[int, int, int, int]
    probabilities: Sequence[float]
    dominant: str


AnalyzeFn = Callable[[np.ndarray], Sequence[FaceResultLike]]


def reading_from_faces(
    session_id: uuid.UUID, faces: Sequence[FaceResultLike], captured_at: datetime
) -> Reading | None:
    """One reading per analysed frame: the largest face (the patient, closest to their own camera), with the count.

    None when no face was found: an empty frame says nothing about emotion, so nothing is stored.
    """
    if not faces:
        return None
    def area(face: FaceResultLike) -> int:
        _, _, w, h = face.box  # fer's FaceBox unpacks like OpenCV's (x, y, w, h) but is not indexable
        return int(w) * int(h)

    main = max(faces, key=area)
    probabilities = np.asarray(main.probabilities, dtype=np.float64)
    total = float(probabilities.sum())
    if probabilities.shape != (7,) or not np.all(np.isfinite(probabilities)) or total <= 0:
        raise ValueError(f"analysis returned unusable probabilities: {main.probabilities!r}")
    # float32 softmax rows sum to 1 only within ~1e-6; renormalise in float64 so the store's check never trips.
    probabilities = np.clip(probabilities, 0.0, None) / total
    return Reading(
        session_id=session_id,
        captured_at=captured_at,
        probabilities=tuple(float(p) for p in probabilities),
        source="remote",
        box=tuple(int(v) for v in main.box),  # type: ignore[arg-type]
        faces=len(faces),
        id=uuid.uuid4(),
    )


@dataclass(frozen=True)
class RemoteStatus:
    """One patient stream's counters: what the patient's page shows, and what the logs record when it ends."""

    frames_received: int
    frames_analysed: int
    frames_skipped: int  # refused by the rate limiter or replaced in the slot before analysis
    frames_without_face: int
    frames_since_face: int  # analysed frames in a row without a face, up to now (0 when the last one had a face)
    analysis_errors: int
    last_dominant: str  # only shown to the patient when settings.show_emotions_to_patient
    writer: WriterStatus

    @property
    def readings_written(self) -> int:
        return self.writer.written


@dataclass
class _Frame:
    image: np.ndarray
    captured_at: datetime


class RemoteAnalyzer:
    """One patient's pipeline: `submit` (from the WebRTC thread) -> analysis thread -> ReadingBatchWriter -> store.

    `analysis_gate` is shared by every patient in the process: it caps how many frames are analysed at the same time
    (about one per CPU core), so extra patients lower each one's effective rate instead of oversubscribing the CPU.
    """

    def __init__(
        self,
        session_id: uuid.UUID,
        analyze: AnalyzeFn,
        write: Callable[[Sequence[Reading]], int],
        analysis_fps: float,
        analysis_gate: threading.Semaphore | None = None,
        write_interval_s: float = 1.0,
        on_closed: Callable[[str], None] | None = None,
    ) -> None:
        self.session_id = session_id
        self._analyze = analyze
        self._limiter = RateLimiter(analysis_fps)
        self._slot: LatestFrameSlot[_Frame] = LatestFrameSlot()
        self._gate = analysis_gate
        self._lock = threading.Lock()
        self._received = 0
        self._refused = 0
        self._analysed = 0
        self._no_face = 0
        self._since_face = 0
        self._errors = 0
        self._last_dominant = ""
        self._stopped = threading.Event()
        self.writer = ReadingBatchWriter(
            write, interval_s=write_interval_s, name=f"remote-writer-{session_id}", on_closed=self._writer_closed
        )
        self._on_closed = on_closed
        self._thread = threading.Thread(target=self._run, name=f"remote-analysis-{session_id}", daemon=True)
        self._thread.start()

    # Called from the WebRTC thread for every frame: must be cheap.
    def wants_frame(self) -> bool:
        """Count the frame and ask the rate limiter whether to analyse it (the caller then converts it and submits)."""
        with self._lock:
            self._received += 1
        count_video_frame(self.session_id)
        if self._stopped.is_set() or not self._limiter.try_acquire():
            with self._lock:
                self._refused += 1
            return False
        return True

    def submit(self, image: np.ndarray, captured_at: datetime | None = None) -> None:
        self._slot.put(_Frame(image, captured_at or datetime.now(timezone.utc)))

    def offer(self, image: np.ndarray, captured_at: datetime | None = None) -> bool:
        """`wants_frame` + `submit` for callers that already hold the image as an array."""
        if not self.wants_frame():
            return False
        self.submit(image, captured_at)
        return True

    def status(self) -> RemoteStatus:
        with self._lock:
            return RemoteStatus(
                frames_received=self._received,
                frames_analysed=self._analysed,
                frames_skipped=self._refused + self._slot.replaced,
                frames_without_face=self._no_face,
                frames_since_face=self._since_face,
                analysis_errors=self._errors,
                last_dominant=self._last_dominant,
                writer=self.writer.status(),
            )

    @property
    def closed_reason(self) -> str:
        return self.writer.status().closed_reason

    def stop(self, flush_timeout: float = 5.0) -> RemoteStatus:
        """Stop analysing, write what is pending, end both threads. Safe to call more than once."""
        self._stopped.set()
        self._slot.close()
        self._thread.join(5.0)
        self.writer.stop(flush_timeout)
        return self.status()

    def _run(self) -> None:
        while not self._stopped.is_set():
            frame = self._slot.take(timeout=0.5)
            if frame is None:
                continue
            try:
                if self._gate is not None:
                    with self._gate:
                        faces = self._analyze(frame.image)
                else:
                    faces = self._analyze(frame.image)
                reading = reading_from_faces(self.session_id, faces, frame.captured_at)
            except Exception:  # noqa: BLE001 - one bad frame must not end the patient's session
                log.exception("analysing a remote frame failed")
                with self._lock:
                    self._errors += 1
                continue
            with self._lock:
                self._analysed += 1
                if reading is None:
                    self._no_face += 1
                    self._since_face += 1
                else:
                    self._since_face = 0
                    self._last_dominant = reading.dominant
            if reading is not None:
                self.writer.add(reading)

    def _writer_closed(self, reason: str) -> None:
        # The session ended or the link expired: analysing more frames would only produce readings nobody can store.
        self._stopped.set()
        self._slot.close()
        if self._on_closed:
            self._on_closed(reason)


def make_analyze(settings: Settings) -> AnalyzeFn:
    """The `fer` video pipeline (`fer.VideoPipeline`: BlazeFace, face tracker) with the configured model
    (`settings.model_path`, else the shipped one): returns the patient's face only (an empty list when they are not in
    view), so a second face in the room or behind the patient is never scored as them.

    One pipeline per analysis thread, which is one patient's stream: the tracker follows that patient, and each model
    holds a lock around its interpreter, so sharing would serialise every patient through a single core; the
    process-wide gate (about one analysis per core) bounds the total. The model is loaded here once to fail early with
    fer's message (e.g. ModelNotFoundError naming the export command).
    """
    import fer

    fer.EmotionClassifier.load(settings.model_path)
    local = threading.local()

    def analyze(frame: np.ndarray) -> Sequence[FaceResultLike]:
        if not hasattr(local, "pipeline"):
            local.pipeline = fer.VideoPipeline.load(settings.model_path)
        return local.pipeline.process(frame).faces  # type: ignore[return-value]

    return analyze


def remote_writer(store: Store, token: str) -> Callable[[Sequence[Reading]], int]:
    """The writer's `write`: every batch is checked against the join token by the store itself."""

    def write(batch: Sequence[Reading]) -> int:
        return store.insert_remote_readings(token, batch)

    return write


def default_analysis_gate() -> threading.Semaphore:
    """About one analysis per CPU core at a time, for the whole process."""
    return threading.Semaphore(max(1, os.cpu_count() or 1))
