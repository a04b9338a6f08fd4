"""Remote sessions' server-side analysis runs the one video pipeline (fer.video) per patient stream: the reading is the
patient's face, followed across frames, never a larger face that comes into view behind them (real photos, shipped
model)."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timezone

from app.remote import make_analyze, reading_from_faces
from settings import Settings
from tests.fer.scenes_video import OTHER_PERSON, PATIENT, drifting_shot, photo, shot_frame


def test_the_remote_reading_follows_the_patient_not_a_larger_face(photos_dir):
    patient, other = photo(photos_dir, PATIENT), photo(photos_dir, OTHER_PERSON)
    analyze = make_analyze(Settings())
    alone = drifting_shot(patient, 6, height=220, left=-20, top=60)
    crowded = [frame.copy() for frame in drifting_shot(patient, 8, height=220, left=-20, top=60, start=6)]
    visitor = shot_frame(other, height=340, left=330, top=10)
    for frame in crowded:
        frame[:, 330:] = visitor[:, 330:]
    results: list = []

    def stream() -> None:  # one patient's analysis thread, as RemoteAnalyzer runs it
        results.extend(analyze(frame) for frame in alone + crowded)

    worker = threading.Thread(target=stream)
    worker.start()
    worker.join(300)
    assert len(results) == len(alone) + len(crowded)
    patient_x = results[0][0].box[0]
    for faces in results:
        [face] = faces  # the patient only
        assert abs(face.box[0] - patient_x) < 40 and face.box[0] < 330
        reading = reading_from_faces(uuid.uuid4(), faces, datetime.now(timezone.utc))
        assert reading is not None and reading.box == tuple(face.box)
