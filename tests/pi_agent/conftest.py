"""Fixtures for the agent's tests: on the shared real PostgreSQL (tests/conftest.py: `postgres_server` with
stop/start for outages, a fresh `database_url` per test), a clinic with a registered device and a live in-person session, a clip of real FER2013
faces (needs ../shared), a clip without faces (made here), and the shipped model (an anchor from ../shared only when the
shipped model is missing)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from bench.agent import make_face_clip
from store.api import Store
from store.models import NewPatient, Session
from tests.e2e.fixtures_video import model_for_tests

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_MODEL = PROJECT_ROOT / "fer" / "models" / "fer_edge_int8.tflite"


@dataclass
class Clinic:
    system: Store
    clinician: Store  # acting as the clinician who owns the patient
    device_id: uuid.UUID
    device_key: str
    patient_id: uuid.UUID
    database_url: str

    def start_session(self) -> Session:
        return self.clinician.start_session(self.patient_id, "in_person", device_id=self.device_id)

    def env(self, tmp_path: Path, **extra: str) -> dict[str, str]:
        """Environment for an agent subprocess talking to this clinic's database."""
        values = {
            "PYTHONPATH": str(PROJECT_ROOT),
            "DATABASE_URL": self.database_url,
            "PSYA_DEVICE_ID": str(self.device_id),
            "PSYA_DEVICE_KEY": self.device_key,
            "PSYA_DATA_DIR": str(tmp_path / "agent-data"),
            "PSYA_AGENT_ENV_FILE": str(tmp_path / "no-such.env"),
            "PSYA_SECRETS_FILE": str(tmp_path / "no-secrets.toml"),
            "PSYA_RETRY_MAX_SECONDS": "2",
            "PSYA_SESSION_POLL_SECONDS": "0.5",
            "PSYA_HEARTBEAT_SECONDS": "2",
        }
        values.update(extra)
        return {**{k: v for k, v in os.environ.items() if not k.startswith(("PSYA_", "DATABASE_URL", "SUPABASE_"))}, **values}


@pytest.fixture
def clinic(database_url, system_store, clinician, clinician_store) -> Clinic:
    """A patient with consent and a registered device (with its one-time key) in a fresh database of this test's own
    (fixtures `database_url`, `system_store`, `clinician_store` from tests/conftest.py)."""
    patient = clinician_store.create_patient(NewPatient(full_name=f"Patient of {clinician.username}"))
    clinician_store.record_consent(patient.id, True, date.today(), "facial analysis during sessions")
    registration = clinician_store.register_device(f"pi-{uuid.uuid4().hex[:6]}", "Room 1")
    return Clinic(system_store, clinician_store, registration.device.id, registration.key, patient.id, database_url)


@pytest.fixture(scope="session")
def face_clip(fer2013_dir, tmp_path_factory) -> Path:
    """12 s of 640x480 video at 15 fps: a different real FER2013 face every second."""
    path = tmp_path_factory.mktemp("clips") / "faces.mp4"
    make_face_clip(fer2013_dir, path, seconds=12, fps=15)
    return path


@pytest.fixture(scope="session")
def model_path(request, tmp_path_factory) -> Path:
    """The shipped model (in the repo, so no skip); only without it, the mini-Xception anchor from ../shared with the
    sidecar `fer` reads (64x64, x/127.5-1)."""
    if SHIPPED_MODEL.is_file() and SHIPPED_MODEL.with_suffix(".json").is_file():
        return SHIPPED_MODEL
    try:
        linked = model_for_tests(request.getfixturevalue("anchors_dir"), tmp_path_factory.mktemp("model"))
    except FileNotFoundError as error:
        pytest.skip(str(error))
    return SHIPPED_MODEL if linked is None else linked


@pytest.fixture(scope="session")
def faceless_clip(tmp_path_factory) -> Path:
    """6 s of 640x480 video at 15 fps with no face in it (made here, no shared data): for what needs frames, not faces."""
    import cv2
    import numpy as np

    path = tmp_path_factory.mktemp("clips") / "faceless.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 15, (640, 480))
    assert writer.isOpened(), f"OpenCV cannot write {path}"
    rng = np.random.default_rng(3)
    try:
        for _ in range(6 * 15):
            writer.write(rng.integers(90, 130, size=(480, 640, 3), dtype=np.uint8))
    finally:
        writer.release()
    return path


def agent_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pi_agent", *args]


def start_agent(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    handle = log_path.open("ab")
    return subprocess.Popen(agent_command(*args), cwd=PROJECT_ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
