"""An uploaded recording keeps its own clock (issue 12): the session is dated when it was recorded (the file's
metadata by default) and lasts as long as the video. Real model, real faces (skipped when ../shared is absent)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from app import review, sessions, uploads
from settings import Settings
from store.errors import InvalidInput
from tests.app.helpers import PHOTOS, consenting_patient, write_face_video


@pytest.fixture
def model_path(anchors_dir: Path, tmp_path: Path) -> Path | None:
    from tests.e2e.fixtures_video import model_for_tests

    return model_for_tests(anchors_dir, tmp_path)


def test_a_video_session_is_dated_when_recorded_and_lasts_as_long_as_the_video(clinician_store, model_path, photos_dir, tmp_path):
    video = write_face_video(photos_dir, PHOTOS, tmp_path / "session.mp4")  # 3 s
    patient = consenting_patient(clinician_store, "Inma Jover")
    recorded = datetime(2026, 11, 20, 9, 30, 15, tzinfo=timezone.utc)
    analyzer = sessions.default_video_analyzer(Settings(model_path=model_path))
    result = sessions.import_video(clinician_store, patient, video, analyzer, fps=2.0, recorded_at=recorded)
    session = clinician_store.get_session(result.session.id)
    assert session.started_at == recorded
    assert (session.ended_at - session.started_at).total_seconds() == pytest.approx(result.duration_s, abs=0.01)
    assert result.duration_s == pytest.approx(3.0, abs=0.2)
    built = review.build(clinician_store, session)
    assert built.summary.readings == result.readings and built.frame["captured_at"].iloc[0] >= recorded


def test_only_recorded_sessions_are_retimed_and_never_into_the_future(clinician_store):
    patient = consenting_patient(clinician_store, "Jon Kortazar")
    live = clinician_store.start_remote_session(patient.id).session
    with pytest.raises(InvalidInput):
        clinician_store.retime_recorded_session(live.id, live.started_at - timedelta(days=1))
    video = clinician_store.start_session(patient.id, "recorded_video")
    with pytest.raises(InvalidInput, match="future"):
        clinician_store.retime_recorded_session(video.id, datetime.now(timezone.utc) + timedelta(days=1))
    with pytest.raises(InvalidInput, match="before it starts"):
        clinician_store.retime_recorded_session(video.id, datetime(2026, 1, 2, tzinfo=timezone.utc), datetime(2026, 1, 1, tzinfo=timezone.utc))


def test_the_recording_time_comes_from_the_files_metadata(photos_dir, tmp_path):
    plain = write_face_video(photos_dir, PHOTOS[:1], tmp_path / "plain.mp4")
    tagged = tmp_path / "tagged.mp4"
    import av  # remux with a creation time, as cameras and phones write it

    with av.open(str(plain)) as source, av.open(str(tagged), "w") as target:
        target.metadata["creation_time"] = "2026-11-20T09:30:15.000000Z"
        stream = target.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is None:
                continue
            packet.stream = stream
            target.mux(packet)
    assert uploads.recording_started_at(tagged) == datetime(2026, 11, 20, 9, 30, 15, tzinfo=timezone.utc)
    assert uploads.recording_started_at(tmp_path / "missing.mp4") is None
