"""Fixtures for the store's own tests: the behaviour suite runs once per backend that runs here, on a real PostgreSQL.

- "database_url": `open_store(Settings(database_url=...))` on a fresh migrated database (the DATABASE_URL path).
- "embedded": `open_store(Settings(data_dir=...))`, the zero-configuration default: the store starts its own embedded
  PostgreSQL under data_dir and migrates it (one cluster for the test session; tests use unique names).

The Supabase REST backend cannot run here (no PostgREST); it has test_supabase_rest_contract.py instead.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import bcrypt
import pytest

from settings import Settings
from store import open_store
from store.api import Actor, Store
from store.models import Clinician, Device, NewPatient, Patient, Reading, Session

HAPPY = (0.05, 0.01, 0.04, 0.6, 0.1, 0.1, 0.1)
SAD = (0.05, 0.05, 0.1, 0.05, 0.6, 0.05, 0.1)


@pytest.fixture(scope="session")
def embedded_store():
    """open_store on the default (embedded) backend; its server is stopped when the test session ends."""
    import shutil

    from store.embedded import EmbeddedPostgres
    from tests.conftest import private_temp_dir

    data_dir = private_temp_dir("psya-test-embedded-")
    store = open_store(Settings(data_dir=data_dir))
    yield store
    store.close()
    EmbeddedPostgres(data_dir).stop()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(params=["database_url", "embedded"])
def backend(request) -> Store:
    """The system store of each backend that runs here."""
    if request.param == "database_url":
        database_url = request.getfixturevalue("database_url")
        store = open_store(Settings(database_url=database_url))
        yield store
        store.close()
    else:
        yield request.getfixturevalue("embedded_store")


@dataclass
class World:
    """Builds the people and things a behaviour test needs, through the store itself."""

    system: Store

    def clinician(self, role: str = "clinician") -> tuple[Clinician, Store]:
        name = f"{role}_{secrets.token_hex(5)}"
        password_hash = bcrypt.hashpw(b"a long passphrase", bcrypt.gensalt(rounds=4)).decode()
        clinician = self.system.create_clinician(name, f"Dr {name}", password_hash, role)
        return clinician, self.system.as_actor(Actor.for_clinician(clinician))

    def patient(self, store: Store, consent: bool = True, name: str | None = None) -> Patient:
        patient = store.create_patient(NewPatient(full_name=name or f"Patient {secrets.token_hex(4)}"))
        if consent:
            patient = store.record_consent(patient.id, True, date(2026, 1, 5), "facial analysis in sessions")
        return patient

    def device(self, store: Store) -> tuple[Device, Store]:
        registration = store.register_device(f"pi-{secrets.token_hex(3)}", "Room 1")
        device = self.system.authenticate_device(registration.device.id, registration.key)
        return device, self.system.as_actor(Actor.for_device(device.id))

    def in_person_session(self, store: Store) -> tuple[Session, Store]:
        """A live in-person session of a consenting patient, and the store acting as its device."""
        patient = self.patient(store)
        device, device_store = self.device(store)
        return store.start_session(patient.id, "in_person", device.id), device_store


@pytest.fixture
def world(backend) -> World:
    return World(backend)


def readings_for(session_id: uuid.UUID, count: int, probabilities=HAPPY, source: str = "pi",
                 start: datetime | None = None, step_ms: int = 250) -> list[Reading]:
    # now, to the millisecond (as clients send): the database refuses readings from before the session or the future
    start = start or datetime.now(timezone.utc).replace(microsecond=datetime.now(timezone.utc).microsecond // 1000 * 1000)
    return [Reading(session_id=session_id, captured_at=start + timedelta(milliseconds=step_ms * i),
                    probabilities=probabilities, source=source, box=(10, 20, 30, 40))
            for i in range(count)]
