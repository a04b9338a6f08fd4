"""The agent's session clock (pi_agent/clock.py): the offset to the database's clock is measured NTP-style on each
heartbeat, from the sample with the smallest round trip of the last few, and readings are stamped device clock + offset.
Against a real PostgreSQL: a device whose clock is 30 s ahead measures -30 s, stores it on its own row, and stamps its
frames in database time."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from pi_agent.clock import ClockSample, DatabaseClock
from pi_agent.spool import Spool
from pi_agent.sync import QUICK_CLOCK_SAMPLES, DeviceLink, SyncWorker
from store.postgres import PostgresStore

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=timezone.utc)


def sample(at_seconds: float, offset_ms: float, round_trip_ms: float, skew_ms: float = 0.0) -> ClockSample:
    """A heartbeat sent at T0 + at_seconds (device clock) with this round trip, against a database `offset_ms` ahead;
    the database answered `skew_ms` later than halfway (asymmetric network: the error the round trip bounds)."""
    sent = T0 + timedelta(seconds=at_seconds)
    received = sent + timedelta(milliseconds=round_trip_ms)
    database = sent + timedelta(milliseconds=round_trip_ms / 2 + offset_ms + skew_ms)
    return ClockSample(sent, database, received)


def test_a_sample_is_the_midpoint_of_its_round_trip():
    one = sample(0, offset_ms=1500, round_trip_ms=40)
    assert one.round_trip == timedelta(milliseconds=40)
    assert one.offset == timedelta(milliseconds=1500)


def test_the_estimate_is_the_sample_with_the_smallest_round_trip_of_the_last_few():
    clock = DatabaseClock(device_clock=lambda: T0, samples_kept=4)
    assert clock.offset is None and clock.now() == T0  # not measured yet: the device clock as it is
    clock.add(sample(0, offset_ms=-30_000, round_trip_ms=20, skew_ms=+4))
    clock.add(sample(30, offset_ms=-30_000, round_trip_ms=900, skew_ms=+400))  # a slow call, answered late
    clock.add(sample(60, offset_ms=-30_000, round_trip_ms=8, skew_ms=-1))  # the best one
    clock.add(sample(90, offset_ms=-30_000, round_trip_ms=300, skew_ms=-120))
    assert clock.best_sample.round_trip == timedelta(milliseconds=8)
    assert clock.offset == timedelta(milliseconds=-30_001)
    assert clock.now() == T0 - timedelta(milliseconds=30_001)


def test_the_best_sample_ages_out_after_the_last_few():
    clock = DatabaseClock(device_clock=lambda: T0, samples_kept=3)
    clock.add(sample(0, offset_ms=200, round_trip_ms=5, skew_ms=2))
    for n in range(1, 4):
        clock.add(sample(30 * n, offset_ms=200, round_trip_ms=50 + n, skew_ms=-10))
    assert clock.best_sample.round_trip == timedelta(milliseconds=51)
    assert clock.offset == timedelta(milliseconds=190)


def test_a_stepped_device_clock_replaces_the_samples_that_described_the_old_one():
    clock = DatabaseClock(device_clock=lambda: T0)
    clock.add(sample(0, offset_ms=-30_000, round_trip_ms=5))
    clock.add(sample(30, offset_ms=-30_000, round_trip_ms=40))
    # NTP stepped the Pi's clock back by 30 s: the new sample cannot agree with the old ones (30 s apart, 25 ms error)
    clock.add(sample(60, offset_ms=0, round_trip_ms=60))
    assert clock.samples == 1
    assert clock.offset == timedelta(0)


def test_a_sample_whose_clock_went_back_during_the_call_is_ignored():
    clock = DatabaseClock(device_clock=lambda: T0)
    clock.add(sample(0, offset_ms=700, round_trip_ms=10))
    clock.add(ClockSample(T0, T0, T0 - timedelta(seconds=1)))
    assert clock.samples == 1 and clock.offset == timedelta(milliseconds=700)


class SkewedClock:
    """The real wall clock, `ahead` seconds ahead (a Pi whose clock was set wrong)."""

    def __init__(self, ahead: float) -> None:
        self.ahead = timedelta(seconds=ahead)

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.ahead


def test_a_device_30_s_ahead_measures_its_offset_and_stores_it_on_its_row(clinic, tmp_path):
    clock = DatabaseClock(device_clock=SkewedClock(30))
    link = DeviceLink(lambda: PostgresStore.connect(clinic.database_url), clinic.device_id, clinic.device_key)
    worker = SyncWorker(link, Spool(tmp_path / "spool.sqlite3"), manual_session=None, heartbeat_seconds=3600,
                        session_poll_seconds=0, batch_seconds=0.1, retry_max_seconds=1, clock=clock)
    device = next(d for d in clinic.clinician.list_devices() if d.id == clinic.device_id)
    assert device.clock_offset_ms is None and device.clock_measured_at is None  # never measured
    try:
        worker.cycle()
        # measured on the first heartbeat: database time - device time = -30 s, within the round trip on this machine
        assert clock.offset is not None and abs(clock.offset + timedelta(seconds=30)) < timedelta(seconds=1)
        assert abs(clock.now() - datetime.now(timezone.utc)) < timedelta(seconds=1)
        for _ in range(QUICK_CLOCK_SAMPLES):  # a few heartbeats in quick succession, then one per heartbeat_seconds
            worker.cycle()
        assert clock.samples == QUICK_CLOCK_SAMPLES
    finally:
        link.close()
    device = next(d for d in clinic.clinician.list_devices() if d.id == clinic.device_id)
    # the row holds the offset the device reported on its last heartbeat (the best one measured before that call)
    assert device.clock_offset_ms is not None and abs(device.clock_offset_ms + 30_000) < 1000
    assert device.clock_measured_at is not None


def test_frames_are_stamped_in_database_time(clinic, tmp_path, faceless_clip):
    from pi_agent.sources import FrameGrabber, open_source

    clock = DatabaseClock(device_clock=SkewedClock(30))
    clock.add(ClockSample(clock.device_time(), datetime.now(timezone.utc), clock.device_time()))
    grabber = FrameGrabber(open_source(str(faceless_clip)), clock=clock.now)
    try:
        frame = grabber.take(timeout=30)
    finally:
        grabber.close()
    assert frame is not None
    assert abs(frame.captured_at - datetime.now(timezone.utc)) < timedelta(seconds=5)  # not 30 s ahead


@pytest.mark.parametrize("offset", [timedelta(hours=25), timedelta(hours=-25)])
def test_an_absurd_offset_is_not_stored_but_the_heartbeat_gets_through(clinic, tmp_path, offset):
    from store.api import Actor
    from store.errors import InvalidInput

    device = clinic.system.as_actor(Actor.for_device(clinic.device_id))
    with pytest.raises(InvalidInput, match="set the device's clock"):
        device.heartbeat(offset)
    clock = DatabaseClock(device_clock=lambda: datetime.now(timezone.utc) - offset)
    link = DeviceLink(lambda: PostgresStore.connect(clinic.database_url), clinic.device_id, clinic.device_key)
    worker = SyncWorker(link, Spool(tmp_path / f"spool-{uuid.uuid4().hex}.sqlite3"), manual_session=None,
                        heartbeat_seconds=0, session_poll_seconds=0, batch_seconds=0.1, retry_max_seconds=1, clock=clock)
    try:
        for _ in range(2):
            worker.cycle()  # the second heartbeat would report an offset over the limit: it reports none instead
    finally:
        link.close()
    stored = next(d for d in clinic.clinician.list_devices() if d.id == clinic.device_id)
    assert stored.clock_offset_ms is None and stored.last_heartbeat is not None
