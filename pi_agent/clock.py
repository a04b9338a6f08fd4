"""The session clock on the Pi: readings are stamped in database time, so "Stop" means the same moment for both.

The database stamps a session's start and end (now()); the agent stamps each reading's captured_at. A Pi whose clock is
3 s ahead would otherwise file the last 3 s before Stop as "after the end" (refused), and one 3 s behind would file 3 s
recorded after Stop as part of the session. So the agent measures its clock against the database's on every heartbeat
(`public.device_heartbeat` returns clock_timestamp()), NTP-style:

    sent = device clock before the call, received = device clock after it, database = the database's answer
    round trip = received - sent;  offset = database - (sent + round trip / 2)     (error at most round trip / 2)

and keeps the sample with the smallest round trip of the last few (one slow call, a TLS reconnect or a busy database,
does not move the estimate). Readings are stamped device clock + offset when the frame is read, so readings spooled
during an outage keep the offset known when they were captured.

Until a first measurement succeeds the offset is 0 (the device clock as it is). That costs nothing in normal operation:
the agent records only while the database says a session is live for it, and it asks only after the round's heartbeat
succeeded (pi_agent/sync.py, SyncWorker.cycle), so a clock is always measured before the first reading of a session.
The exception is `--session ID` (a fixed session, for tests and field checks): it records at once, even with the
database down; until a heartbeat gets through, its readings carry the device clock (bounded by the database's
READING_CLOCK_SKEW sanity check, store/validation.py).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

SAMPLES_KEPT = 5  # heartbeats are 30 s apart by default: the best of the last 2.5 minutes
# Two samples agree when their offsets differ by no more than their combined uncertainty (half of each round trip) plus
# this much (clock drift between them, a few ms at 50 ppm over minutes). A sample that disagrees means the device clock
# was stepped (NTP after boot, a manual change): the older samples describe a clock that is gone, so they are dropped.
AGREEMENT_SLACK = timedelta(milliseconds=50)


def device_now() -> datetime:
    """The device's own wall clock, UTC. The one place the agent reads it for readings and clock samples (tests of a
    badly set clock replace this function in the agent process: tests/pi_agent/skewed_agent.py)."""
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class ClockSample:
    """One heartbeat: the device clock just before and just after the call, and the database's clock during it."""

    sent: datetime
    database: datetime
    received: datetime

    @property
    def round_trip(self) -> timedelta:
        return self.received - self.sent

    @property
    def offset(self) -> timedelta:
        """Database time - device time, assuming the answer was stamped halfway through the round trip."""
        return self.database - (self.sent + self.round_trip / 2)

    def agrees_with(self, other: "ClockSample") -> bool:
        return abs(self.offset - other.offset) <= (self.round_trip + other.round_trip) / 2 + AGREEMENT_SLACK


class DatabaseClock:
    """Device clock + measured offset. `now()` is read by the frame grabber's thread, `measure` runs on the sync thread;
    the offset is one reference swapped under a lock."""

    def __init__(self, device_clock: Callable[[], datetime] | None = None, samples_kept: int = SAMPLES_KEPT) -> None:
        self._device_clock = device_clock or device_now  # looked up here, so a replaced device_now is used
        self._samples: deque[ClockSample] = deque(maxlen=samples_kept)
        self._best: ClockSample | None = None
        self._lock = threading.Lock()

    def device_time(self) -> datetime:
        return self._device_clock()

    def now(self) -> datetime:
        """The database's time as this device knows it: the moment to stamp a reading with."""
        return self._device_clock() + (self.offset or timedelta(0))

    @property
    def offset(self) -> timedelta | None:
        """Database time - device time, from the best sample kept; None until one was measured."""
        best = self._best
        return None if best is None else best.offset

    @property
    def best_sample(self) -> ClockSample | None:
        return self._best

    @property
    def samples(self) -> int:
        with self._lock:
            return len(self._samples)

    def add(self, sample: ClockSample) -> timedelta | None:
        """Keep `sample` (unless its round trip is negative: the device clock went back during the call) and return the
        offset now in use. A sample that disagrees with the ones kept replaces them all (the clock was stepped)."""
        with self._lock:
            if sample.round_trip < timedelta(0):
                return self.offset
            if not all(sample.agrees_with(kept) for kept in self._samples):
                self._samples.clear()
            self._samples.append(sample)
            self._best = min(self._samples, key=lambda s: s.round_trip)
            return self._best.offset

    def measure(self, ask_database: Callable[[], datetime]) -> ClockSample:
        """Call `ask_database` (a heartbeat returning the database's clock), timed on the device clock; keep the sample."""
        sent = self._device_clock()
        database = ask_database()
        received = self._device_clock()
        sample = ClockSample(sent, database, received)
        self.add(sample)
        return sample
