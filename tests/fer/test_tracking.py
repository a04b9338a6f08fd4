"""The face tracker and the video pipeline on clips composed from real face photos (../shared/datasets/photos): one
patient is followed through a cut to another person and back, found again after leaving the picture, never swapped for
a larger face that comes into view; each reading's quality flags a tiny face and a face cut by the frame edge."""

from __future__ import annotations

import pytest

import fer
from fer.tracking import continues
from tests.fer.scenes_video import OTHER_PERSON, PATIENT, drifting_shot, empty_frames, photo, shot_frame

FPS = 15.0
OTHER_SHOT = (120, 110, 100)  # the other person's shot has its own background, as after a cut in an edited video


@pytest.fixture(scope="module")
def faces(photos_dir):
    return photo(photos_dir, PATIENT), photo(photos_dir, OTHER_PERSON)


@pytest.fixture(scope="module")
def detectors():
    return fer.BlazeFaceDetector(), fer.BlazeFaceShortDetector()


def run(tracker: fer.FaceTracker, frames) -> list[fer.TrackStep]:
    return [tracker.update(frame, t=n / FPS) for n, frame in enumerate(frames)]


def other_person_where_the_patient_was(other):
    """The other person framed so their face sits where the patient's was, at the patient's size."""
    return drifting_shot(other, 15, height=165, left=212, top=8, background=OTHER_SHOT)


def test_the_patient_keeps_one_identity_through_a_cut_to_another_person_and_back(faces, detectors):
    patient, other = faces
    before, cut_away, after = drifting_shot(patient, 20), other_person_where_the_patient_was(other), drifting_shot(patient, 20, start=20)
    tracker = fer.FaceTracker(*detectors)
    steps = run(tracker, before + cut_away + after)
    # Position and size alone would take the other face for the patient: only the cut and the appearance tell them apart.
    other_face = detectors[0].detect(cut_away[0])[0]
    assert continues(steps[19].box, other_face)
    assert all(s.box is not None and s.identity == 1 for s in steps[:20])
    assert steps[20].cut
    assert all(s.box is None and s.identity is None and s.others_rejected == 1 for s in steps[20:35]), \
        "a cut to another person was scored as the patient"
    assert all(s.box is not None and s.identity == 1 for s in steps[35:])
    # The cheap local search did most of the work: whole-frame detection only to acquire, periodically and after cuts.
    tracked = [s for s in steps if s.box is not None]
    assert sum(s.method == "track" for s in tracked) >= 0.8 * len(tracked)


def test_the_patient_is_found_again_after_leaving_and_coming_back_elsewhere(faces, detectors):
    patient, _ = faces
    frames = drifting_shot(patient, 15) + empty_frames(20) + drifting_shot(patient, 15, left=20, start=35)
    steps = run(fer.FaceTracker(*detectors), frames)
    assert all(s.box is not None for s in steps[:15])
    assert all(s.box is None for s in steps[15:35])
    # An empty room costs no whole-frame detection per frame: one when the face left, then only if the picture changes.
    assert sum(s.detect_ms > 0 for s in steps[15:35]) <= 3
    back = steps[35:]
    assert all(s.box is not None and s.identity == 1 for s in back)
    assert back[0].box.x < steps[0].box.x - 100  # found where the patient came back, not where they were


def test_a_larger_face_coming_into_view_is_not_taken_for_the_patient(faces, detectors):
    patient, other = faces
    alone = drifting_shot(patient, 10, height=220, left=-20, top=60)
    with_other = [frame.copy() for frame in drifting_shot(patient, 15, height=220, left=-20, top=60, start=10)]
    visitor = shot_frame(other, height=340, left=330, top=10)
    for frame in with_other:
        frame[:, 330:] = visitor[:, 330:]
    steps = run(fer.FaceTracker(*detectors, redetect_every=5), alone + with_other)
    patient_box = steps[9].box
    assert max(s.faces_in_view for s in steps[10:]) == 2
    for step in steps[10:]:
        assert step.box is not None and step.identity == 1 and continues(patient_box, step.box)


def test_someone_else_becomes_the_patient_only_after_the_patient_is_gone_for_forget_after_s(faces, detectors):
    patient, other = faces
    frames = drifting_shot(patient, 10) + other_person_where_the_patient_was(other) * 2  # 2 s of the other person
    steps = run(fer.FaceTracker(*detectors, forget_after_s=1.0), frames)
    gone_since = 9 / FPS
    for n, step in enumerate(steps[10:], start=10):
        if n / FPS - gone_since <= 1.0:
            assert step.box is None
        else:
            assert step.box is not None and step.identity == 2


def test_tracked_boxes_agree_with_whole_frame_detection(faces, detectors):
    patient, _ = faces
    frames = drifting_shot(patient, 30)
    steps = run(fer.FaceTracker(*detectors), frames)
    for frame, step in zip(frames, steps):
        [full] = detectors[0].detect(frame)
        assert iou(step.box, full) > 0.75


def test_quality_flags_a_tiny_face_and_a_face_cut_by_the_frame_edge(faces):
    patient, _ = faces
    pipeline = fer.VideoPipeline.load()  # the shipped model
    normal = pipeline.process(shot_frame(patient, height=340, left=170, top=10)).face
    assert normal is not None and normal.quality.ok and normal.quality.flags == ()
    assert normal.quality.yaw is not None and abs(normal.quality.yaw) < 0.3
    pipeline.reset()
    tiny = pipeline.process(shot_frame(patient, height=110, left=300, top=100)).face
    assert tiny is not None and tiny.quality.tiny and "tiny" in tiny.quality.flags and not tiny.quality.ok
    assert not tiny.quality.near_edge
    pipeline.reset()
    edge = pipeline.process(shot_frame(patient, height=340, left=-120, top=10)).face
    assert edge is not None and edge.quality.near_edge and not edge.quality.ok and edge.box[0] == 0


def test_a_pipeline_reading_is_the_patient_with_stage_timings(faces):
    patient, _ = faces
    pipeline = fer.VideoPipeline.load()
    readings = [pipeline.process(frame, t=n / FPS) for n, frame in enumerate(drifting_shot(patient, 5))]
    assert [r.method for r in readings] == ["full", "track", "track", "track", "track"]
    for reading in readings:
        assert reading.face is not None and reading.identity == 1 and reading.faces_in_view == 1
        assert sum(reading.face.probabilities) == pytest.approx(1.0, abs=1e-4)
        assert reading.face.dominant in fer.LABELS
        assert reading.times.classify_ms > 0 and (reading.times.detect_ms > 0 or reading.times.track_ms > 0)
    assert readings[0].times.detect_ms > 0 and readings[1].times.detect_ms == 0


def iou(a: fer.FaceBox, b: fer.FaceBox) -> float:
    ix = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inter = ix * iy
    return inter / (a.area + b.area - inter)
