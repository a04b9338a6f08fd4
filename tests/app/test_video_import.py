"""Recorded-video sessions: an uploaded video is analysed with the agent's own video code (pi_agent.video) and the real
model on real face photos from ../shared, the readings land in a new recorded_video session, and nothing of a bad file
is kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import sessions
from settings import Settings
from store.errors import PermissionDenied
from tests.app.conftest import follow, open_page, page_text
from tests.app.helpers import PHOTOS, consenting_patient, write_face_video



@pytest.fixture
def model_path(anchors_dir: Path, tmp_path: Path) -> Path | None:
    """None when the shipped model exists (the settings default), else the mini-Xception anchor with its sidecar."""
    from tests.e2e.fixtures_video import model_for_tests

    return model_for_tests(anchors_dir, tmp_path / "model")


@pytest.fixture
def face_video(photos_dir: Path, tmp_path: Path) -> Path:
    """A 3-second MP4 (8 fps): one real face photo per second."""
    return write_face_video(photos_dir, PHOTOS, tmp_path / "session.mp4")


def test_a_video_becomes_an_ended_session_of_video_readings(clinician_store, model_path, face_video):
    patient = consenting_patient(clinician_store, "Video Patient")
    analyzer = sessions.default_video_analyzer(Settings(model_path=model_path))
    progress: list[float] = []
    result = sessions.import_video(clinician_store, patient, face_video, analyzer, fps=2.0, on_progress=lambda f, _: progress.append(f))
    assert result.frames_read == 24 and result.duration_s == pytest.approx(3.0)
    assert result.readings >= 4  # 6 analysed frames (2 per second), nearly all with a detected face
    assert result.session.mode == "recorded_video" and result.session.status == "ended"
    readings = clinician_store.readings_since(result.session.id).readings
    assert len(readings) == result.readings and {r.source for r in readings} == {"video"}
    assert progress == sorted(progress) and progress[-1] == pytest.approx(1.0)


def test_an_unreadable_file_is_refused_and_leaves_no_session(clinician_store, model_path, tmp_path):
    from pi_agent.video import VideoError

    patient = consenting_patient(clinician_store, "Video Patient")
    junk = tmp_path / "not-a-video.mp4"
    junk.write_bytes(b"\x00garbage" * 1000)
    analyzer = sessions.default_video_analyzer(Settings(model_path=model_path))
    with pytest.raises(VideoError):
        sessions.import_video(clinician_store, patient, junk, analyzer)
    assert clinician_store.list_sessions(patient.id) == []


def test_no_video_session_without_consent(clinician_store, model_path, face_video):
    from store.models import NewPatient

    patient = clinician_store.create_patient(NewPatient("No Consent"))
    with pytest.raises(PermissionDenied):
        sessions.import_video(clinician_store, patient, face_video, analyzer=None)


def test_uploading_a_video_on_the_sessions_page_opens_its_review(signed_in_app, clinician_store, model_path, face_video, monkeypatch):
    if model_path is not None:
        monkeypatch.setenv("FER_MODEL_PATH", str(model_path))
    patient = consenting_patient(clinician_store, "Upload Patient")
    at = open_page(signed_in_app, "pages/sessions.py", patient=patient.id)
    at.radio(key="start_mode").set_value("recorded_video").run()
    at.file_uploader(key="video_upload").set_value(("session.mp4", face_video.read_bytes(), "video/mp4")).run()
    next(b for b in at.button if b.label == "Analyse video").click().run(timeout=180)
    assert not at.exception
    assert at.title[0].value == "Session review" and "Analysed 0:03 of video" in page_text(at)
    assert int({m.label: m.value for m in at.metric}["Readings"]) >= 4
    [session] = clinician_store.list_sessions(patient.id)
    assert session.mode == "recorded_video" and session.status == "ended"
    follow(at, "pages/review.py").run()  # and the review stays open on the next run
    assert int({m.label: m.value for m in at.metric}["Readings"]) >= 4
