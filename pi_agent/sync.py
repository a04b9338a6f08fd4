"""Everything the agent says to the database, on one background thread: authenticate the device, heartbeat, learn which
session (if any) is live for it, and drain the spool in batches.

One thread and one back-off for all of it: when the database is unreachable every one of these fails the same way, and
a single retry schedule (1 s, 2 s, 4 s ... capped) with one log line per outage keeps the Pi quiet and the log readable.
The capture loop never waits on the network: it only reads `current_session` and writes to the spool.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pi_agent.clock import DatabaseClock
from pi_agent.spool import Spool
from store.api import Actor, Store
from store.errors import InvalidInput, NotFound, PermissionDenied, SessionNotLive, StoreError, StoreUnavailable
from store.models import Reading, Session
from store.validation import CLOCK_OFFSET_LIMIT

log = logging.getLogger("pi_agent.sync")

UPLOAD_BATCH = 500
# Heartbeats in quick succession (one per sync round) until this many clock samples are kept, at start and after the
# device clock was stepped: the first call after connecting is slow, and the best of a few is a good offset at once.
QUICK_CLOCK_SAMPLES = 3
# A move of the measured offset worth a line in the log.
OFFSET_CHANGE_LOGGED = timedelta(milliseconds=500)
# Refusals no retry will change: the readings go to the spool's rejected table (never StoreUnavailable: that is retried).
_REFUSALS = (SessionNotLive, PermissionDenied, NotFound, InvalidInput)


class DeviceAuthError(RuntimeError):
    """The database refused the device's id or key: a configuration error no retry will fix."""


@dataclass(frozen=True)
class SessionTarget:
    """Where readings go right now. `manual` when fixed by --session (never cleared by polling)."""

    session_id: uuid.UUID
    manual: bool = False


class Backoff:
    def __init__(self, first: float = 1.0, cap: float = 30.0) -> None:
        self.first, self.cap = first, cap
        self.current = 0.0

    def failed(self) -> float:
        self.current = self.first if self.current == 0 else min(self.current * 2, self.cap)
        return self.current

    def succeeded(self) -> None:
        self.current = 0.0


class DeviceLink:
    """Opens the store lazily (the database may be down when the Pi boots) and authenticates the device once.

    It needs nothing but the device's own credentials (docs/security.md): `authenticate_device`, `heartbeat`,
    `live_session_for_device` and `insert_readings` all go through the device functions, which are all such a login may
    call. A revoked device's login no longer exists, which looks like an outage here: the agent keeps spooling.

    The store's connection pool reconnects by itself after an outage, so a failed request keeps the store; only a store
    that could not be opened at all, or a device not yet authenticated, is retried from scratch."""

    def __init__(self, open_store: Callable[[], Store], device_id: uuid.UUID, device_key: str) -> None:
        self._open_store = open_store
        self.device_id = device_id
        self._device_key = device_key
        self._system: Store | None = None
        self._device: Store | None = None

    def call(self, action: Callable[[Store], object]) -> object:
        return action(self._device_store())

    def close(self) -> None:
        store, self._system, self._device = self._system, None, None
        if store is not None:
            try:
                store.close()
            except Exception:  # closing a pool whose server is gone may itself fail; nothing to save there
                pass

    def _device_store(self) -> Store:
        if self._device is None:
            if self._system is None:
                self._system = self._open_store()
            try:
                self._system.authenticate_device(self.device_id, self._device_key)
            except (PermissionDenied, NotFound) as error:
                raise DeviceAuthError(f"device {self.device_id} was refused by the database: {error}") from error
            self._device = self._system.as_actor(Actor.for_device(self.device_id))
            log.info("device %s authenticated", self.device_id)
        return self._device


class SyncWorker:
    def __init__(
        self,
        link: DeviceLink | None,
        spool: Spool,
        manual_session: uuid.UUID | None,
        heartbeat_seconds: float,
        session_poll_seconds: float,
        batch_seconds: float,
        retry_max_seconds: float,
        clock: DatabaseClock | None = None,
    ) -> None:
        self.link = link
        self.clock = clock or DatabaseClock()  # measured on each heartbeat; the capture loop stamps readings with it
        self.spool = spool
        self.heartbeat_seconds = heartbeat_seconds
        self.session_poll_seconds = session_poll_seconds
        self.batch_seconds = batch_seconds
        self.backoff = Backoff(cap=retry_max_seconds)
        self.fatal: BaseException | None = None
        self.sent = 0
        self._target: SessionTarget | None = SessionTarget(manual_session, manual=True) if manual_session else None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sync", daemon=True)
        self._last_heartbeat = 0.0
        self._last_poll = 0.0
        self._outage_since: float | None = None
        self._polled = False
        self._logged_offset: timedelta | None = None

    @property
    def current_session(self) -> SessionTarget | None:
        return self._target

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """New readings are in the spool."""
        self._wake.set()

    def stop(self, flush_timeout: float) -> None:
        """Stop after one last attempt to drain the spool (what cannot be sent stays spooled for the next start)."""
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout=flush_timeout)
        if self.link is not None:
            self.link.close()

    def _run(self) -> None:
        while True:
            stopping = self._stopping.is_set()
            delay = self.batch_seconds
            try:
                self.cycle(final=stopping)
            except StoreUnavailable as error:
                delay = self.backoff.failed()
                self._report_outage(error, delay)
            except DeviceAuthError as error:
                log.error("%s; check PSYA_DEVICE_ID / PSYA_DEVICE_KEY in the env file. Stopping.", error)
                self.fatal = error
                return
            except Exception as error:  # a bug or unexpected store error must not end the thread: log, back off, retry
                delay = self.backoff.failed()
                log.exception("sync failed (%s); retrying in %.0f s", error, delay)
            if stopping:
                return
            self._wake.wait(timeout=delay)
            self._wake.clear()

    def cycle(self, final: bool = False) -> None:
        """One round: heartbeat and session poll when due, then drain the spool. Raises StoreUnavailable.

        The heartbeat comes first and a failed one ends the round, so the session is polled (and recording starts) only
        once the device clock has been measured: a session's readings are stamped in database time from the first one."""
        if self.link is None:
            return
        now = time.monotonic()
        due = now - self._last_heartbeat >= self.heartbeat_seconds or self.clock.samples < QUICK_CLOCK_SAMPLES
        if not final and due:
            self._heartbeat()
            self._last_heartbeat = now
        self._drain()
        if not final and (self._target is None or not self._target.manual) and now - self._last_poll >= self.session_poll_seconds:
            session = self.link.call(lambda s: s.live_session_for_device())
            self._last_poll = now
            self._set_session(session)
        if self._outage_since is not None:
            log.info(
                "database reachable again after %.0f s; %d readings still spooled",
                time.monotonic() - self._outage_since,
                self.spool.pending_count(),
            )
            self._outage_since = None
        self.backoff.succeeded()

    def _heartbeat(self) -> None:
        """Heartbeat, reporting the offset measured so far, and measure the clock on the answer (pi_agent/clock.py)."""
        offset = self.clock.offset
        if offset is not None and abs(offset) > CLOCK_OFFSET_LIMIT:
            log.error("this device's clock is %.0f s off the database's: set it (readings are corrected meanwhile)",
                      -offset.total_seconds())
            offset = None  # the database does not store an absurd offset; the heartbeat itself must still get through
        reported = offset

        def heartbeat(store: Store) -> datetime:
            return store.heartbeat(reported)

        sample = self.clock.measure(lambda: self.link.call(heartbeat))
        current = self.clock.offset
        if current is not None and (self._logged_offset is None or abs(current - self._logged_offset) > OFFSET_CHANGE_LOGGED):
            ahead = -current.total_seconds()
            log.info("device clock is %.3f s %s the database's (round trip %.0f ms): readings are stamped in database "
                     "time", abs(ahead), "ahead of" if ahead >= 0 else "behind", sample.round_trip.total_seconds() * 1000)
            self._logged_offset = current

    def _drain(self) -> None:
        while True:
            batch = self.spool.oldest(UPLOAD_BATCH)
            if not batch:
                return
            # insert_readings is all-or-nothing per call; send one session at a time so one refused session cannot
            # hold back another's readings.
            session_id = batch[0].session_id
            batch = [r for r in batch if r.session_id == session_id]
            try:
                self._send(batch)
            except SessionNotLive as error:
                # The session ended while these readings were spooled (or before the agent's next poll noticed). The
                # store still takes those captured by its end (in database time: the clock is corrected), but only in a
                # batch with no later reading: store the part captured in time, keep the rest aside. Those were
                # captured after Stop: refused for good, kept in the rejected table, never retried (the spool cannot
                # get stuck on them), and expected at the end of every session, so not an error (unlike readings
                # refused because the session ended more than LATE_READING_GRACE ago).
                refused, error = self._send_in_time_part(batch, error)
                self._reject(refused, session_id, error, expected="is after the end" in str(error))
            except _REFUSALS as error:
                self._reject(batch, session_id, error)

    def _send(self, readings: Sequence[Reading]) -> None:
        """Insert, then acknowledge at once, so a later failure cannot make the spool resend (or reject) them."""
        self.link.call(lambda s: s.insert_readings(readings))
        self.spool.acknowledge(r.id for r in readings)
        self.sent += len(readings)

    def _send_in_time_part(self, batch: list[Reading], refusal: StoreError) -> tuple[list[Reading], StoreError]:
        """Store the longest accepted prefix of `batch` in capture order; return the rest and the last refusal.

        A reading's acceptance after the end depends only on its captured_at (<= ended_at), so the accepted
        readings are a prefix in capture order, found by bisection in about log2(len(batch)) round trips (the same
        approach as app.remote.ReadingBatchWriter). Asking the store for the session's ended_at instead would copy the
        store's rule here and still need the bisection for the grace period; the store's own answer is the authority.
        StoreUnavailable propagates: what was stored so far is already acknowledged, the rest stays pending and is
        retried after the back-off (a retry of a stored reading is a no-op in the store)."""
        ordered = sorted(batch, key=lambda r: r.captured_at)
        stored, longest = 0, len(ordered) - 1  # ordered[:stored] is stored; the whole batch was refused
        while stored < longest:
            end = (stored + longest + 1) // 2
            try:
                self._send(ordered[stored:end])
                stored = end
            except _REFUSALS as error:
                refusal, longest = error, end - 1
        if stored:
            log.info("session %s had ended: stored the %d readings captured in time out of a batch of %d",
                     batch[0].session_id, stored, len(batch))
        return ordered[stored:], refusal

    def _reject(self, readings: list[Reading], session_id: uuid.UUID, error: StoreError, expected: bool = False) -> None:
        if not readings:
            return
        self.spool.reject(readings, f"{type(error).__name__}: {error}")
        if expected:
            log.info("%d readings for session %s were captured after it ended and are not stored (%s); kept in the "
                     "spool's rejected table", len(readings), session_id, error)
            return
        log.error(
            "database refused %d readings for session %s (%s); kept in the spool's rejected table",
            len(readings), session_id, error,
        )

    def _set_session(self, session: Session | None) -> None:
        previous = self._target.session_id if self._target else None
        current = session.id if session else None
        first_answer, self._polled = not self._polled, True
        if current != previous or first_answer:
            if current:
                log.info("session %s is live for this device: recording", current)
            else:
                log.info("no live session for this device: idle (camera closed)")
        self._target = SessionTarget(current) if current else None

    def _report_outage(self, error: StoreError, retry_in: float) -> None:
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            log.warning("database unreachable (%s); readings are spooled locally, retrying with back-off", error)
        log.info("database still unreachable; %d readings spooled; next try in %.0f s", self.spool.pending_count(), retry_in)
