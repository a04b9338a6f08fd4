"""Bounded-rate frame intake for remote sessions: the rate limiter and the one-frame slot (no database needed)."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timezone
from types import SimpleNamespace

import numpy as np
import pytest

from app.remote import LatestFrameSlot, RateLimiter, reading_from_faces
from fer.labels import LABELS


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_lets_the_first_frame_through_at_once():
    assert RateLimiter(4.0, clock=FakeClock()).try_acquire()


def test_rate_limiter_refuses_frames_that_come_too_soon():
    clock = FakeClock()
    limiter = RateLimiter(4.0, clock=clock)
    assert limiter.try_acquire()
    clock.now += 0.1
    assert not limiter.try_acquire()
    clock.now += 0.15  # 0.25 s after the first: the next slot
    assert limiter.try_acquire()


def test_a_30fps_camera_is_analysed_at_the_configured_rate():
    clock = FakeClock()
    limiter = RateLimiter(4.0, clock=clock)
    accepted = 0
    for _ in range(30 * 10):  # ten seconds of frames at 30 fps
        accepted += limiter.try_acquire()
        clock.now += 1 / 30
    assert accepted == 40


def test_jittery_frames_still_average_the_configured_rate():
    clock = FakeClock()
    limiter = RateLimiter(5.0, clock=clock)
    rng = np.random.default_rng(0)
    accepted = 0
    for gap in rng.uniform(0.02, 0.09, size=2000):  # about 18 fps with jitter, ~110 s
        accepted += limiter.try_acquire()
        clock.now += float(gap)
    elapsed = clock.now - 1000.0
    assert accepted == pytest.approx(5.0 * elapsed, rel=0.03)


def test_after_a_pause_the_limiter_does_not_burst():
    clock = FakeClock()
    limiter = RateLimiter(4.0, clock=clock)
    assert limiter.try_acquire()
    clock.now += 60  # the camera froze for a minute
    assert limiter.try_acquire()
    assert not limiter.try_acquire()  # no banked credit: one frame, not a burst
    clock.now += 0.25
    assert limiter.try_acquire()


@pytest.mark.parametrize("rate", [0, -1, float("inf"), float("nan")])
def test_rate_limiter_rejects_nonsense_rates(rate):
    with pytest.raises(ValueError):
        RateLimiter(rate)


def test_rate_limiter_is_safe_across_threads():
    clock = FakeClock()
    limiter = RateLimiter(1.0, clock=clock)
    results: list[bool] = []
    lock = threading.Lock()

    def hammer() -> None:
        for _ in range(1000):
            ok = limiter.try_acquire()
            with lock:
                results.append(ok)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == 1  # the clock never moved: exactly one frame in 4000 gets through


def test_frame_slot_keeps_only_the_newest_frame():
    slot: LatestFrameSlot[int] = LatestFrameSlot()
    for frame in range(5):
        slot.put(frame)
    assert slot.take(timeout=0) == 4
    assert slot.replaced == 4
    assert slot.take(timeout=0) is None


def test_frame_slot_wakes_a_waiting_reader():
    slot: LatestFrameSlot[str] = LatestFrameSlot()
    got: list[str | None] = []
    reader = threading.Thread(target=lambda: got.append(slot.take(timeout=180)))
    reader.start()
    time.sleep(0.05)
    slot.put("frame")
    reader.join(60)
    assert not reader.is_alive() and got == ["frame"]


def test_closing_the_slot_releases_the_reader():
    slot: LatestFrameSlot[str] = LatestFrameSlot()
    got: list[str | None] = []
    # The reader would wait 180 s for a frame: only close() can release it within the generous 60 s join.
    reader = threading.Thread(target=lambda: got.append(slot.take(timeout=180)))
    reader.start()
    time.sleep(0.05)  # most likely waiting by now; a take() after close() returns None at once, which passes too
    slot.close()
    reader.join(60)
    assert not reader.is_alive() and got == [None]


def face(box, probabilities):
    return SimpleNamespace(box=box, probabilities=probabilities, dominant=LABELS[int(np.argmax(probabilities))])


def test_a_frame_becomes_one_reading_of_its_largest_face():
    session_id = uuid.uuid4()
    at = datetime(2026, 1, 1, 12, 0, 0, 123000, tzinfo=timezone.utc)
    small = face((0, 0, 40, 40), np.eye(7, dtype=np.float32)[0])
    large = face((100, 80, 200, 200), np.array([0.05, 0, 0, 0.8, 0.05, 0.05, 0.05], dtype=np.float32))
    reading = reading_from_faces(session_id, [small, large], at)
    assert reading is not None
    assert reading.session_id == session_id and reading.captured_at == at and reading.source == "remote"
    assert reading.box == (100, 80, 200, 200) and reading.faces == 2
    assert reading.dominant == "happy"
    assert abs(sum(reading.probabilities) - 1.0) < 1e-9


def test_a_frame_without_a_face_gives_no_reading():
    assert reading_from_faces(uuid.uuid4(), [], datetime.now(timezone.utc)) is None


def test_unusable_probabilities_are_an_error_not_a_reading():
    with pytest.raises(ValueError):
        reading_from_faces(uuid.uuid4(), [face((0, 0, 10, 10), [float("nan")] * 7)], datetime.now(timezone.utc))
