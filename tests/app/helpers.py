"""Test data for the app tests: patients with consent, devices, sessions with synthetic readings written as the device."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone

from pathlib import Path

from fer.labels import LABELS
from store.api import Actor, Store
from store.models import NewPatient, Patient, Reading, Session


def one_hot(label: str, weight: float = 0.85) -> tuple[float, ...]:
    rest = (1.0 - weight) / 6
    return tuple(weight if name == label else rest for name in LABELS)


def consenting_patient(store: Store, name: str = "Alice Example", **fields) -> Patient:
    patient = store.create_patient(NewPatient(name, **fields))
    return store.record_consent(patient.id, True, date.today(), "facial analysis in sessions")


def synthetic_readings(session: Session, labels: list[str], every_s: float = 1.0, start: datetime | None = None) -> list[Reading]:
    start = start or session.started_at or datetime.now(timezone.utc)
    return [
        Reading(session.id, start + timedelta(seconds=i * every_s), one_hot(label), "pi", box=(10, 10, 80, 80))
        for i, label in enumerate(labels)
    ]


def device_session(clinician_store: Store, store_factory, patient: Patient, name: str = "pi-room-1") -> tuple[Session, Store]:
    """A live in-person session and the store acting as its device (which alone may insert its readings)."""
    registration = clinician_store.register_device(name, "Room 1")
    session = clinician_store.start_session(patient.id, "in_person", device_id=registration.device.id)
    return session, store_factory(Actor.for_device(registration.device.id))


def began_ago(store_factory, session: Session, seconds: float) -> Session:
    """Move a just-started session's start `seconds` into the past: a session that has been running that long (the
    database owner's connection; only tests rewrite history)."""
    with store_factory.base._pool.connection() as connection:
        connection.execute("UPDATE public.sessions SET started_at = started_at - make_interval(secs => %s) WHERE id = %s", (seconds, session.id))
    return store_factory.base.get_session(session.id)


def recorded_session(clinician_store: Store, store_factory, patient: Patient, labels: list[str], end: bool = True) -> Session:
    """A session that ran for as long as its readings (one a second), ended now unless `end` is False."""
    session, device_store = device_session(clinician_store, store_factory, patient, name=f"pi-{uuid.uuid4().hex[:6]}")
    session = began_ago(store_factory, session, len(labels) + 1.0)  # readings are never captured after Stop
    device_store.insert_readings(synthetic_readings(session, labels))
    return clinician_store.end_session(session.id) if end else session


PHOTOS = ("obama.jpg", "lin-manuel-miranda.png", "alex-lacamoire.png")  # real faces in ../shared/datasets/photos


def write_face_video(photos_dir: Path, names: tuple[str, ...], path: Path, fps: float = 8.0, seconds_each: float = 1.0) -> Path:
    """An MP4 (640x480) showing each photo for `seconds_each`, letterboxed on a grey background."""
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write MP4 here")
    for name in names:
        image = cv2.imread(str(photos_dir / name))
        scale = min(640 / image.shape[1], 480 / image.shape[0])
        resized = cv2.resize(image, (int(image.shape[1] * scale), int(image.shape[0] * scale)))
        frame = np.full((480, 640, 3), 90, np.uint8)
        top, left = (480 - resized.shape[0]) // 2, (640 - resized.shape[1]) // 2
        frame[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
        for _ in range(round(fps * seconds_each)):
            writer.write(frame)
    writer.release()
    return path
