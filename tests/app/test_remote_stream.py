"""The streamlit-webrtc glue (`app.webrtc_session.PatientStream`) with real av frames: every frame is returned as is,
analysis starts on the first frame, and ending the video never blocks the WebRTC thread, even with the store stuck."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from types import SimpleNamespace

import av
import numpy as np

from app import webrtc_session
from app.webrtc_session import PatientStream
from settings import Settings
from store.models import Reading


def camera_frame(value: int = 110) -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(np.full((480, 640, 3), value, dtype=np.uint8), format="bgr24")


def one_face(image: np.ndarray):
    assert image.shape == (480, 640, 3) and image.dtype == np.uint8  # the analysis gets a BGR camera frame
    return [SimpleNamespace(box=(200, 120, 240, 240), probabilities=(0, 0, 0, 1.0, 0, 0, 0), dominant="happy")]


class RecordingWrite:
    def __init__(self, block: threading.Event | None = None) -> None:
        self.readings: list[Reading] = []
        self.block = block

    def __call__(self, batch: Sequence[Reading]) -> int:
        if self.block is not None:
            self.block.wait(STUCK_SECONDS)
        self.readings.extend(batch)
        return len(batch)


# A stuck store answers after this long; a caller that waited for it would still be blocked when the generous JOIN_SECONDS
# are over, one that did not returns at once.
STUCK_SECONDS = 180
JOIN_SECONDS = 60


def wait_until(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_every_frame_goes_back_to_the_patient_untouched():
    stream = PatientStream(uuid.uuid4(), RecordingWrite(), one_face, analysis_fps=4)
    frames = [camera_frame(v) for v in range(10)]
    try:
        assert all(stream.video_frame_callback(f) is f for f in frames)
    finally:
        stream.stop()


def test_the_first_frame_starts_analysis_and_readings_are_written():
    write = RecordingWrite()
    session_id = uuid.uuid4()
    stream = PatientStream(session_id, write, one_face, analysis_fps=4)
    assert stream.status() is None and not stream.streaming
    stream.video_frame_callback(camera_frame())
    assert stream.streaming and webrtc_session.live_stream(session_id) is stream
    assert wait_until(lambda: len(write.readings) == 1)
    assert write.readings[0].session_id == session_id and write.readings[0].dominant == "happy"
    stream.on_video_ended()
    assert webrtc_session.live_stream(session_id) is None
    assert wait_until(lambda: stream.status() is not None and stream.status().readings_written == 1)


def test_ending_the_video_does_not_wait_for_a_stuck_store():
    release = threading.Event()
    write = RecordingWrite(block=release)
    stream = PatientStream(uuid.uuid4(), write, one_face, analysis_fps=4)
    stream.video_frame_callback(camera_frame())
    assert wait_until(lambda: stream.status().frames_analysed == 1)
    ender = threading.Thread(target=stream.on_video_ended)
    ender.start()
    ender.join(JOIN_SECONDS)
    assert not ender.is_alive(), "on_video_ended blocked the WebRTC thread while the store was stuck"
    assert write.readings == []  # the store is still stuck: on_video_ended returned without waiting for it
    release.set()
    assert wait_until(lambda: len(write.readings) == 1)  # the pending reading is still written afterwards


def test_start_again_after_stop_starts_a_fresh_analysis():
    write = RecordingWrite()
    stream = PatientStream(uuid.uuid4(), write, one_face, analysis_fps=4)
    stream.video_frame_callback(camera_frame())
    assert wait_until(lambda: len(write.readings) == 1)
    stream.on_video_ended()
    stream.video_frame_callback(camera_frame())
    assert stream.streaming
    assert wait_until(lambda: len(write.readings) == 2)
    stream.stop()


def test_a_second_window_on_the_same_link_takes_over_the_session():
    write = RecordingWrite()
    session_id = uuid.uuid4()
    first = PatientStream(session_id, write, one_face, analysis_fps=50)
    second = PatientStream(session_id, write, one_face, analysis_fps=50)
    first.video_frame_callback(camera_frame())
    assert wait_until(lambda: len(write.readings) == 1)
    second.video_frame_callback(camera_frame())
    assert first.superseded and not first.streaming and webrtc_session.live_stream(session_id) is second
    assert wait_until(lambda: len(write.readings) == 2)
    for _ in range(5):  # the first window keeps showing its video, but feeds nothing into the session any more
        time.sleep(0.03)
        first.video_frame_callback(camera_frame())
    assert wait_until(lambda: first.status() is not None)  # its analyzer was stopped (on its own thread): final counts
    assert first.status().frames_analysed == 1
    second.stop()
    assert wait_until(lambda: second.status() is not None)  # both analyzers have finished and written what they had
    assert len(write.readings) == 2


def status_texts(stream: PatientStream, show_emotions: bool = False) -> list[str]:
    return [line.text for line in webrtc_session.patient_status_lines(stream, show_emotions)]


def test_the_patient_sees_progress_but_not_the_emotions_by_default():
    stream = PatientStream(uuid.uuid4(), RecordingWrite(), one_face, analysis_fps=50)
    assert status_texts(stream) == ["Camera off. Press **Start camera** when you are ready."]
    stream.video_frame_callback(camera_frame())
    assert wait_until(lambda: stream.status().frames_analysed == 1)
    assert status_texts(stream) == ["Connected: 1 frames analysed."]
    lines = webrtc_session.patient_status_lines(stream, show_emotions=True)  # SHOW_EMOTIONS_TO_PATIENT=true
    assert [(line.kind, line.label, line.text) for line in lines][-1] == ("metric", "Current expression", "happy")
    stream.stop()


def test_the_patient_is_asked_to_face_the_camera_when_no_face_is_seen():
    stream = PatientStream(uuid.uuid4(), RecordingWrite(), lambda image: [], analysis_fps=200)
    frame = camera_frame()
    deadline = time.monotonic() + 60  # frames keep coming, as from a camera, until enough were analysed
    while stream.status() is None or stream.status().frames_analysed < webrtc_session.NO_FACE_HINT_FRAMES:
        assert time.monotonic() < deadline, "the analysis did not reach the no-face hint"
        stream.video_frame_callback(frame)
        time.sleep(0.01)
    assert "No face is visible: please sit facing the camera, in good light." in status_texts(stream)
    stream.stop()


def test_a_failing_store_is_shown_as_a_delay_not_a_loss():
    def store_down(batch):
        from store.errors import StoreUnavailable

        raise StoreUnavailable("down (injected)")

    stream = PatientStream(uuid.uuid4(), store_down, one_face, analysis_fps=50)
    stream.video_frame_callback(camera_frame())
    assert wait_until(lambda: stream.status().writer.failed_attempts >= 1)
    assert "Saving is delayed (connection to the server); nothing is lost, it will retry." in status_texts(stream)
    stream.stop()


def test_rtc_configuration_is_always_an_explicit_list():
    assert webrtc_session.rtc_configuration(Settings()) == {"iceServers": []}
    stun = [{"urls": ["stun:stun.example.org:3478"]}]
    assert webrtc_session.rtc_configuration(Settings(ice_servers=stun)) == {"iceServers": stun}


def test_the_patient_is_asked_for_video_only():
    assert webrtc_session.PATIENT_MEDIA_CONSTRAINTS["audio"] is False
    assert webrtc_session.PATIENT_MEDIA_CONSTRAINTS["video"]
