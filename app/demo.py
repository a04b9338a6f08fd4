"""A demo data set, only when asked: `make demo` (or `python -m app.demo`).

Creates a demo clinician (the password is generated and printed unless --password is given: there is no default
password), three patients with consent and record entries, a registered Pi device, and for each patient a course of
ended sessions with synthetic readings (a random walk over emotion logits, drifting towards a calmer, happier mix
across sessions) plus a few annotations. Loads into whatever database the settings point at (the embedded one by
default). Refuses to run twice into the same database.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np

from app import auth
from fer.labels import LABELS
from settings import Settings
from store import open_store
from store.api import Actor, Store
from store.errors import StoreError
from store.models import NewPatient, Reading

DEMO_USERNAME = "demo"


def synthetic_probabilities(seconds: int, rate_hz: float, mood: Sequence[float], seed: int, volatility: float = 0.25) -> np.ndarray:
    """(n, 7) probabilities: softmax of a mean-reverting random walk around `mood` (7 logits). Rows sum to 1."""
    rng = np.random.default_rng(seed)
    n = max(int(seconds * rate_hz), 1)
    mood_arr = np.asarray(mood, dtype="float64")
    logits = np.empty((n, len(LABELS)))
    current = mood_arr.copy()
    for i in range(n):
        current += 0.08 * (mood_arr - current) + rng.normal(0.0, volatility, len(LABELS))
        # Occasional short bursts: the peaks a clinician looks for in the review.
        if rng.random() < 0.01:
            current[rng.integers(0, 6)] += 2.5
        logits[i] = current
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def synthetic_readings(session_id: uuid.UUID, start: datetime, seconds: int, mood: Sequence[float], seed: int, rate_hz: float = 2.0, source: str = "pi") -> list[Reading]:
    probabilities = synthetic_probabilities(seconds, rate_hz, mood, seed)
    return [
        Reading(session_id, start + timedelta(seconds=i / rate_hz), tuple(float(p) for p in row), source, box=(220, 120, 180, 180))
        for i, row in enumerate(probabilities)
    ]


def mood(session_index: int, sessions: int, start: dict[str, float], end: dict[str, float]) -> list[float]:
    """Logits moving linearly from `start` to `end` across a course of sessions (treatment progress)."""
    share = session_index / max(sessions - 1, 1)
    return [(1 - share) * start.get(label, 0.0) + share * end.get(label, 0.0) for label in LABELS]


@dataclass(frozen=True)
class DemoPatient:
    patient: NewPatient
    diagnosis_note: str
    start_mood: dict[str, float]
    end_mood: dict[str, float]


DEMO_PATIENTS = (
    DemoPatient(
        NewPatient("Ana Demo", date(1988, 4, 12), "Major depressive disorder, moderate", date(2026, 8, 3), "ana.demo@example.org"),
        "PHQ-9 = 17 at intake.",
        {"sad": 1.6, "neutral": 1.4, "happy": -0.6, "angry": -0.5, "fear": 0.0, "disgust": -1.0, "surprise": -0.8},
        {"sad": 0.2, "neutral": 1.6, "happy": 0.8, "angry": -0.8, "fear": -0.6, "disgust": -1.2, "surprise": -0.4},
    ),
    DemoPatient(
        NewPatient("Bruno Demo", date(1975, 11, 30), "Generalised anxiety disorder", date(2026, 9, 14), "+34 600 000 000"),
        "GAD-7 = 15 at intake.",
        {"fear": 1.2, "neutral": 1.3, "surprise": 0.5, "sad": 0.2, "happy": -0.4, "angry": -0.6, "disgust": -1.0},
        {"fear": 0.1, "neutral": 1.7, "surprise": 0.0, "sad": -0.2, "happy": 0.5, "angry": -0.8, "disgust": -1.2},
    ),
    DemoPatient(
        NewPatient("Carmen Demo", date(1996, 2, 7), "Adjustment disorder with mixed anxiety and depressed mood", date(2026, 10, 1), ""),
        "Referred by GP after job loss.",
        {"neutral": 1.5, "sad": 0.8, "angry": 0.5, "happy": 0.0, "fear": 0.2, "disgust": -0.6, "surprise": -0.6},
        {"neutral": 1.5, "sad": 0.4, "angry": 0.1, "happy": 0.5, "fear": 0.0, "disgust": -0.8, "surprise": -0.5},
    ),
)

NOTES = ("talked about family", "long silence", "laughed about the weekend", "recalled the event", "breathing exercise")


def load_demo(system: Store, password: str, sessions_per_patient: int = 5, session_seconds: int = 600, now: datetime | None = None) -> dict[str, object]:
    """Create the demo data set; returns what was created. Raises InvalidInput when the demo clinician exists."""
    now = now or datetime.now(timezone.utc)
    clinician = auth.create_clinician(system, DEMO_USERNAME, "Dr Demo", password, password, "admin")
    store = system.as_actor(Actor.for_clinician(clinician))
    registration = store.register_device("pi-demo-room", "Demo room")
    created_sessions = 0
    readings = 0
    for p_index, demo in enumerate(DEMO_PATIENTS):
        patient = store.create_patient(demo.patient)
        store.record_consent(patient.id, True, demo.patient.in_treatment_since or date.today(), "Facial expression analysis during therapy sessions (demo).")
        store.add_record_entry(patient.id, demo.patient.in_treatment_since or date.today(), "diagnosis", f"{demo.patient.diagnosis}. {demo.diagnosis_note}")
        for s_index in range(sessions_per_patient):
            # The database accepts no reading from before a session's start or from the future, and sessions start
            # now (docs/security.md, "Bounded reading times"). So a demo session is a recorded video laid out from
            # its real start (a video's timeline may run ahead of the clock), then ended. The record entries carry
            # dates one week apart, so the course of treatment reads as one.
            session = store.start_session(patient.id, "recorded_video")
            started = session.started_at or now
            noted = now - timedelta(weeks=sessions_per_patient - s_index, hours=p_index)
            batch = synthetic_readings(session.id, started, session_seconds, mood(s_index, sessions_per_patient, demo.start_mood, demo.end_mood), seed=1000 * p_index + s_index, source="video")
            for first in range(0, len(batch), 1000):
                readings += store.insert_readings(batch[first : first + 1000])
            for n, text in enumerate(NOTES[: 2 + s_index % 3]):
                store.add_annotation(session.id, started + timedelta(seconds=(n + 1) * session_seconds / 5), text)
            store.end_session(session.id)
            store.add_record_entry(patient.id, noted.date(), "session_note", f"Session {s_index + 1}: {NOTES[s_index % len(NOTES)]}.")
            created_sessions += 1
    return {"clinician": clinician.username, "patients": len(DEMO_PATIENTS), "sessions": created_sessions, "readings": readings, "device": registration.device.name}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--password", help="the demo clinician's password (default: generated and printed)")
    parser.add_argument("--sessions", type=int, default=5, help="sessions per patient (default 5)")
    parser.add_argument("--minutes", type=float, default=10.0, help="minutes of readings per session (default 10)")
    args = parser.parse_args(argv)
    password = args.password or secrets.token_urlsafe(12)
    problems = auth.password_problems(password)
    if problems:
        print(" ".join(problems), file=sys.stderr)
        return 2
    settings = Settings.load()
    try:
        system = open_store(settings)
        if system.get_clinician_by_username(DEMO_USERNAME) is not None:
            print(f"The demo data set is already loaded (clinician {DEMO_USERNAME!r} exists).", file=sys.stderr)
            return 1
        summary = load_demo(system, password, args.sessions, int(args.minutes * 60))
    except StoreError as error:
        print(f"Could not load the demo data set: {error}", file=sys.stderr)
        return 1
    print(f"Demo loaded into the {settings.backend} database: {summary['patients']} patients, {summary['sessions']} sessions, {summary['readings']} readings.")
    print(f"Log in as {DEMO_USERNAME!r} with password {password!r} (an admin account; change or remove it before real use).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
