"""One patient's server-side pipeline with real parts: FER2013 faces composed onto camera-sized frames, the real model
and BlazeFace (`fer`), the rate limiter, and the batch writer into a real PostgreSQL through the join token."""

from __future__ import annotations

import time
import uuid
from datetime import date, datetime, timedelta, timezone

import cv2
import numpy as np
import pytest

from app.remote import RemoteAnalyzer, make_analyze, reading_from_faces, remote_writer
from settings import Settings
from store.models import NewPatient
from tests.e2e.fixtures_video import compose_frame, model_for_tests, pick_face_images

FACE_BOX = (200, 120, 240, 240)


@pytest.fixture(scope="module")
def analyze(anchors_dir, tmp_path_factory):
    return make_analyze(Settings(model_path=model_for_tests(anchors_dir, tmp_path_factory.mktemp("model"))))


@pytest.fixture(scope="module")
def face_frames(fer2013_dir) -> list[np.ndarray]:
    """BGR 640x480 frames, each showing one real FER2013 face (what the browser's camera would deliver)."""
    frames = []
    for image in pick_face_images(fer2013_dir, classes=("happy", "neutral", "surprise"), per_class=2):
        gray = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE)
        frames.append(cv2.cvtColor(compose_frame(gray, FACE_BOX), cv2.COLOR_GRAY2BGR))
    return frames


@pytest.fixture
def remote_join(clinician_store):
    patient = clinician_store.create_patient(NewPatient(full_name=f"Remote Patient {uuid.uuid4().hex[:6]}"))
    clinician_store.record_consent(patient.id, True, date.today(), "facial analysis during sessions")
    return clinician_store.start_remote_session(patient.id)


def feed(analyzer: RemoteAnalyzer, frames: list[np.ndarray], seconds: float, fps: float = 30.0) -> int:
    """Offer frames like a camera would, for `seconds` of wall time; returns how many were offered."""
    offered, start = 0, time.monotonic()
    while time.monotonic() - start < seconds:
        analyzer.offer(frames[offered % len(frames)])
        offered += 1
        time.sleep(1 / fps)
    return offered


def wait_until(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_the_model_finds_the_composed_faces(analyze, face_frames):
    found = [analyze(frame) for frame in face_frames]
    assert sum(1 for faces in found if faces) >= len(face_frames) - 1  # the detector may miss one odd face, not more
    reading = reading_from_faces(uuid.uuid4(), next(f for f in found if f), captured_at=datetime.now(timezone.utc))
    x, y, w, h = reading.box
    assert FACE_BOX[0] <= x + w / 2 <= FACE_BOX[0] + FACE_BOX[2]


def test_a_30fps_stream_is_analysed_at_the_bounded_rate_and_stored(analyze, face_frames, system_store, clinician_store, remote_join):
    fps = 4.0
    analyzer = RemoteAnalyzer(remote_join.session.id, analyze, remote_writer(system_store, remote_join.token), analysis_fps=fps)
    started = time.monotonic()
    offered = feed(analyzer, face_frames, seconds=3.0)
    elapsed = time.monotonic() - started
    status = analyzer.stop()

    assert status.frames_received == offered
    assert status.frames_analysed <= fps * elapsed + 2  # the rest were dropped, never queued
    assert status.frames_skipped >= offered - (fps * elapsed + 2)
    assert status.analysis_errors == 0
    stored = clinician_store.readings_since(remote_join.session.id).readings
    assert len(stored) == status.frames_analysed - status.frames_without_face == status.readings_written
    assert stored, "no face was found in any analysed frame"
    for reading in stored:
        assert reading.source == "remote" and reading.faces == 1
        x, _, w, _ = reading.box
        assert FACE_BOX[0] <= x + w / 2 <= FACE_BOX[0] + FACE_BOX[2]


def test_frames_without_a_face_are_counted_but_not_stored(analyze, face_frames, system_store, clinician_store, remote_join):
    analyzer = RemoteAnalyzer(remote_join.session.id, analyze, remote_writer(system_store, remote_join.token), analysis_fps=20)
    blank = np.full((480, 640, 3), 110, dtype=np.uint8)
    for _ in range(3):
        analyzer.offer(blank)
        assert wait_until(lambda: analyzer.status().frames_analysed >= 1)
        time.sleep(0.06)
    status = analyzer.status()
    assert status.frames_analysed >= 1 and status.frames_without_face == status.frames_analysed
    assert status.frames_since_face == status.frames_analysed  # what makes the page ask the patient to face the camera
    assert clinician_store.readings_since(remote_join.session.id).readings == []
    analyzer.offer(face_frames[0])
    assert wait_until(lambda: analyzer.status().readings_written == 1)
    assert analyzer.stop().frames_since_face == 0


def test_a_bad_frame_is_counted_and_the_next_good_one_is_still_analysed(analyze, face_frames, system_store, remote_join):
    analyzer = RemoteAnalyzer(remote_join.session.id, analyze, remote_writer(system_store, remote_join.token), analysis_fps=50)
    analyzer.offer(np.zeros((480, 640, 3), dtype=np.float64))  # not a uint8 camera frame: fer refuses it
    assert wait_until(lambda: analyzer.status().analysis_errors == 1)
    time.sleep(0.05)
    analyzer.offer(face_frames[0])
    assert wait_until(lambda: analyzer.status().readings_written == 1)
    analyzer.stop()


def test_ending_the_session_stops_the_analysis(analyze, face_frames, system_store, clinician_store, remote_join):
    closed: list[str] = []
    analyzer = RemoteAnalyzer(remote_join.session.id, analyze, remote_writer(system_store, remote_join.token),
                              analysis_fps=20, on_closed=closed.append)
    analyzer.offer(face_frames[0])
    assert wait_until(lambda: analyzer.status().readings_written == 1)
    ended = clinician_store.end_session(remote_join.session.id)
    # A frame captured after the end is refused (stop means stop): the analysis stops.
    analyzer.offer(face_frames[1], captured_at=ended.ended_at + timedelta(seconds=30))
    assert wait_until(lambda: bool(closed))
    analysed = analyzer.status().frames_analysed
    feed(analyzer, face_frames, seconds=0.5)
    assert analyzer.status().frames_analysed == analysed  # no model work for a session that can no longer store it
    analyzer.stop()
    assert len(clinician_store.readings_since(remote_join.session.id).readings) == 1
