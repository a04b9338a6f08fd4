"""Recorded-video sessions: an uploaded video is analysed with the one video pipeline (fer.video, as `pi_agent analyze`)
and the real model on real face photos from ../shared, the readings land in a new recorded_video session, and nothing
of a bad file is kept: not a session, not the upload, not a server path in the message."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import sessions
from settings import Settings
from store.errors import PermissionDenied
from tests.app.conftest import follow, open_page, page_text
from tests.app.helpers import consenting_patient, write_face_video



@pytest.fixture
def model_path(request, tmp_path: Path) -> Path | None:
    """None when the shipped model exists (the settings default; ../shared/anchors not needed), else the mini-Xception
    anchor with its sidecar."""
    from fer.classifier import DEFAULT_MODEL_PATH
    from tests.e2e.fixtures_video import model_for_tests

    if DEFAULT_MODEL_PATH.is_file() and DEFAULT_MODEL_PATH.with_suffix(".json").is_file():
        return None
    return model_for_tests(request.getfixturevalue("anchors_dir"), tmp_path / "model")


@pytest.fixture
def face_video(photos_dir: Path, tmp_path: Path) -> Path:
    """A 3-second MP4 (8 fps) of one patient: the same person in three framings, one per second."""
    return write_face_video(photos_dir, ("obama.jpg", "obama_small.jpg", "obama.jpg"), tmp_path / "session.mp4")


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
    from fer.video import VideoError

    patient = consenting_patient(clinician_store, "Video Patient")
    analyzer = sessions.default_video_analyzer(Settings(model_path=model_path))
    with sessions.saved_upload(b"\x00garbage" * 1000, "holiday.mp4") as junk:
        with pytest.raises(VideoError) as raised:
            sessions.import_video(clinician_store, patient, junk, analyzer, display_name="holiday.mp4")
    assert str(raised.value) == "cannot read holiday.mp4: this file is not a video (or not one this server can decode)"
    assert str(junk) not in str(raised.value) and not junk.exists()
    assert clinician_store.list_sessions(patient.id) == []


def test_a_cut_short_upload_is_refused_with_how_much_decodes(clinician_store, model_path, photos_dir, tmp_path):
    from fer.video import VideoIncompleteError
    from tests.pi_agent.test_analyze_video import write_cut_short_clip

    patient = consenting_patient(clinician_store, "Video Patient")
    analyzer = sessions.default_video_analyzer(Settings(model_path=model_path))
    data = write_cut_short_clip(photos_dir, tmp_path).read_bytes()
    with sessions.saved_upload(data, "session.avi") as upload:
        with pytest.raises(VideoIncompleteError) as raised:
            sessions.import_video(clinician_store, patient, upload, analyzer, display_name="session.avi")
    message = str(raised.value)
    assert message.startswith("session.avi: the video is cut short after ") and "of 6.0 s" in message
    assert str(sessions.UPLOAD_DIR) not in message and str(tmp_path) not in message
    assert clinician_store.list_sessions(patient.id) == []


def test_uploads_left_by_a_crashed_process_are_removed_at_start(tmp_path):
    import os
    import subprocess
    import sys

    folder = tmp_path / "uploads"
    folder.mkdir()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    left_behind = folder / f"{sessions.UPLOAD_PREFIX}{dead_pid}-abc.mp4"
    in_flight = folder / f"{sessions.UPLOAD_PREFIX}{os.getpid()}-def.mp4"  # this (running) process's own upload
    for path in (left_behind, in_flight):
        path.write_bytes(b"video bytes")
    assert sessions.remove_stale_uploads(folder) == 1
    assert not left_behind.exists() and in_flight.exists()
    # A fresh app process cleans the real upload folder on start (importing app.sessions).
    stale = sessions.upload_folder() / f"{sessions.UPLOAD_PREFIX}{dead_pid}-crashed.mp4"
    stale.write_bytes(b"video bytes")
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", "import app.sessions"], cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
                   check=True, timeout=120)
    assert not stale.exists()


def test_an_upload_is_private_and_gone_after_use():
    with sessions.saved_upload(b"bytes", "../../etc/evil name.mp4") as path:
        assert path.parent == sessions.UPLOAD_DIR and path.suffix == ".mp4" and path.read_bytes() == b"bytes"
        assert oct(path.stat().st_mode & 0o777) == "0o600" and oct(path.parent.stat().st_mode & 0o777) == "0o700"
    assert not path.exists()


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
