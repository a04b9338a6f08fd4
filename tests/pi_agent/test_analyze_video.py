"""`python -m pi_agent analyze VIDEO --csv OUT.csv [--session ID] [--fps N]` and the `fer.video` pipeline behind it.

The CSV columns are a contract outside checks rely on: exactly t, the 7 labels in fer.LABELS order, dominant, x, y, w, h.
Bad input is refused in the user's terms before anything is written: not a video, cut short, a rate out of bounds, a
CSV that cannot be written.
"""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from fer.labels import LABELS
from fer.video import VideoIncompleteError
from pi_agent.video import CSV_COLUMNS, VideoError, analyze_video, readings_for_session
from pi_agent.vision import load_fer_analyze
from tests.fer.scenes_video import OTHER_PERSON, PATIENT, drifting_shot, photo, write_clip

ROOT = Path(__file__).resolve().parents[2]
EXPECTED_COLUMNS = ["t", "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "dominant", "x", "y", "w", "h"]


def run_analyze(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "pi_agent", "analyze", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, timeout=300)


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def test_csv_columns_are_exactly_the_contract():
    assert list(CSV_COLUMNS) == EXPECTED_COLUMNS
    assert list(CSV_COLUMNS[1:8]) == list(LABELS)


def test_analyze_writes_one_row_per_face_per_analysed_frame(face_clip, model_path, tmp_path):
    out = tmp_path / "out.csv"
    result = run_analyze(str(face_clip), "--csv", str(out), "--fps", "2", "--model", str(model_path))
    assert result.returncode == 0, result.stderr
    assert "100%" in result.stderr  # the tqdm progress bar ran to the end
    columns, rows = read_csv(out)
    assert columns == EXPECTED_COLUMNS
    # 12 s at 2 analysed frames/s = 24 frames; the patient's face is found in most of them, and only one row each.
    times = [float(r["t"]) for r in rows]
    assert 18 <= len(rows) <= 24
    assert times == sorted(times) and len(set(times)) == len(times)
    assert 0.0 <= times[0] and times[-1] < 12.0
    for row in rows:
        probabilities = [float(row[label]) for label in LABELS]
        assert math.isclose(sum(probabilities), 1.0, abs_tol=1e-4)
        assert row["dominant"] == LABELS[probabilities.index(max(probabilities))]
        x, y, w, h = (int(row[k]) for k in ("x", "y", "w", "h"))
        assert 0 <= x and 0 <= y and w > 40 and h > 40 and x + w <= 640 and y + h <= 480
    # The clip shows a different FER2013 face each second, cycling happy, neutral, surprise, sad, angry, fear: the model
    # must call at least one of the rows in the "happy" seconds (0 and 6) happy, the easiest class.
    happy_seconds = [r for r in rows if int(float(r["t"])) % 6 == 0]
    assert any(r["dominant"] == "happy" for r in happy_seconds)


def test_every_frame_with_fps_zero_and_time_is_video_time(face_clip, model_path):
    analyzer = load_fer_analyze(model_path)
    progress: list[tuple[int, int | None]] = []
    analysis = analyze_video(face_clip, analyzer, fps=0, on_progress=lambda done, total: progress.append((done, total)))
    assert analysis.frames_read == analysis.frames_analysed == 180
    assert analysis.video_fps == pytest.approx(15.0)
    assert progress[-1] == (180, 180)
    assert {row.frame_index for row in analysis.rows} <= set(range(180))
    assert all(row.t == pytest.approx(row.frame_index / 15.0) for row in analysis.rows)


def test_unreadable_or_missing_video_is_a_clear_error(tmp_path, model_path):
    not_a_video = tmp_path / "notes.mp4"
    not_a_video.write_text("this is not a video")
    result = run_analyze(str(not_a_video), "--csv", str(tmp_path / "x.csv"), "--model", str(model_path))
    assert result.returncode == 2
    assert "cannot read" in result.stderr and "this file is not a video" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.csv").exists()
    missing = run_analyze(str(tmp_path / "missing.mp4"), "--csv", str(tmp_path / "y.csv"), "--model", str(model_path))
    assert missing.returncode == 2 and "video not found" in missing.stderr
    analyzer = load_fer_analyze(model_path)
    with pytest.raises(VideoError, match="cannot read"):
        analyze_video(not_a_video, analyzer)


def test_missing_model_is_a_clear_error(face_clip, tmp_path):
    result = run_analyze(str(face_clip), "--csv", str(tmp_path / "x.csv"), "--model", str(tmp_path / "none.tflite"))
    assert result.returncode == 2
    assert "none.tflite" in result.stderr and "Traceback" not in result.stderr


def test_session_option_writes_video_readings_once(clinic, face_clip, model_path, tmp_path):
    session = clinic.clinician.start_session(clinic.patient_id, "recorded_video")
    env = {"DATABASE_URL": clinic.database_url, "PSYA_AGENT_ENV_FILE": str(tmp_path / "none.env"),
           "PSYA_SECRETS_FILE": str(tmp_path / "none.toml"), "PSYA_DATA_DIR": str(tmp_path / "data")}
    args = (str(face_clip), "--csv", str(tmp_path / "out.csv"), "--fps", "2", "--model", str(model_path),
            "--session", str(session.id), "--no-progress")
    first = run_analyze(*args, env=env)
    assert first.returncode == 0, first.stderr
    _, rows = read_csv(tmp_path / "out.csv")
    readings = clinic.clinician.readings_since(session.id).readings
    assert len(readings) == len(rows) > 0
    assert {r.source for r in readings} == {"video"}
    # Stamped from the session's start plus t: the timeline lines up with the session.
    offsets = sorted((r.captured_at - session.started_at).total_seconds() for r in readings)
    assert offsets == pytest.approx(sorted(float(r["t"]) for r in rows), abs=1e-3)
    # Analysing the same video into the same session again adds nothing (ids derive from video, frame and face).
    again = run_analyze(*args, env=env)
    assert again.returncode == 0, again.stderr
    assert f"0 new readings ({len(rows)} already there)" in again.stderr
    assert len(clinic.clinician.readings_since(session.id).readings) == len(rows)


def test_reading_ids_are_stable_for_the_same_video_and_session(face_clip, model_path):
    import uuid

    analyzer = load_fer_analyze(model_path)
    analysis = analyze_video(face_clip, analyzer, fps=1)
    session = uuid.uuid4()
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    first = readings_for_session(analysis, session, start)
    second = readings_for_session(analyze_video(face_clip, analyzer, fps=1), session, start)
    assert [r.id for r in first] == [r.id for r in second]
    assert {r.id for r in first}.isdisjoint(r.id for r in readings_for_session(analysis, uuid.uuid4(), start))


def write_cut_short_clip(photos_dir: Path, tmp_path: Path) -> Path:
    """6 s of a patient (MJPG AVI, 15 fps, 90 frames) with the second half of the file lost, as a broken copy leaves it:
    the header still announces 90 frames."""
    import cv2

    frames = drifting_shot(photo(photos_dir, PATIENT), 90)
    full = tmp_path / "full.avi"
    writer = cv2.VideoWriter(str(full), cv2.VideoWriter_fourcc(*"MJPG"), 15, (frames[0].shape[1], frames[0].shape[0]))
    for frame in frames:
        writer.write(frame)
    writer.release()
    cut = tmp_path / "session.avi"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    return cut


def test_a_cut_short_video_is_reported_as_incomplete_and_nothing_is_written(photos_dir, model_path, tmp_path):
    video = write_cut_short_clip(photos_dir, tmp_path)
    out = tmp_path / "out.csv"
    result = run_analyze(str(video), "--csv", str(out), "--fps", "0", "--model", str(model_path), "--no-progress")
    assert result.returncode == 2, result.stderr
    assert "the video is cut short after" in result.stderr and "of 6.0 s" in result.stderr
    assert "of 90 frames decode" in result.stderr and "--allow-incomplete" in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()
    kept = run_analyze(str(video), "--csv", str(out), "--fps", "0", "--model", str(model_path), "--no-progress",
                       "--allow-incomplete")
    assert kept.returncode == 0, kept.stderr
    assert "INCOMPLETE: 90 frames expected" in kept.stderr
    _, rows = read_csv(out)
    assert 20 <= len(rows) < 90 and float(rows[-1]["t"]) < 4.0
    with pytest.raises(VideoIncompleteError) as raised:
        analyze_video(video, load_fer_analyze(model_path), fps=0)
    assert 20 <= raised.value.analysis.frames_read < 90 and raised.value.analysis.frames_expected == 90


@pytest.mark.parametrize("fps", ["-1", "1000", "nan", "0.01"])
def test_an_analysis_rate_out_of_bounds_is_refused(face_clip, model_path, tmp_path, fps):
    out = tmp_path / "out.csv"
    result = run_analyze(str(face_clip), "--csv", str(out), "--fps", fps, "--model", str(model_path))
    assert result.returncode == 2
    assert "between 0.1 and 60 frames per second" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_an_unwritable_csv_path_is_refused_before_analysing(face_clip, model_path, tmp_path):
    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("a file, not a folder")
    result = run_analyze(str(face_clip), "--csv", str(not_a_folder / "out.csv"), "--model", str(model_path))
    assert result.returncode == 2
    assert "cannot write the CSV" in result.stderr and "Traceback" not in result.stderr
    assert "analysing" not in result.stderr  # refused before the progress bar (and the minutes of analysis) started
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    assert run_analyze(str(face_clip), "--csv", str(folder), "--model", str(model_path)).returncode == 2


def test_only_the_patient_is_written_when_the_video_cuts_to_someone_else(photos_dir, model_path, tmp_path):
    patient, other = photo(photos_dir, PATIENT), photo(photos_dir, OTHER_PERSON)
    frames = (drifting_shot(patient, 30) + drifting_shot(other, 15, height=165, left=212, top=8, background=(120, 110, 100))
              + drifting_shot(patient, 30, start=30))
    video = write_clip(frames, tmp_path / "cuts.mp4", fps=15)
    out = tmp_path / "out.csv"
    result = run_analyze(str(video), "--csv", str(out), "--fps", "0", "--model", str(model_path), "--no-progress")
    assert result.returncode == 0, result.stderr
    _, rows = read_csv(out)
    times = [float(r["t"]) for r in rows]
    assert not [t for t in times if 2.0 <= t < 3.0], "the other person's second was scored as the patient"
    assert len([t for t in times if t < 2.0]) >= 28 and len([t for t in times if t >= 3.0]) >= 28
