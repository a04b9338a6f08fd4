"""Fixtures of the browser tests that drive the real clinic app (tests/e2e/clinic_harness.py).

- `chromium`: Debian's /usr/bin/chromium (the test skips cleanly without it; never `playwright install`).
- `browser` (module): one headless Chromium per test module; each test opens its own context (own cookies, own pages).
- `app_settings`: extra settings (env vars) for the app process; a module overrides it for its own.
- `app_env`, `app` (function): `streamlit run streamlit_app.py` on a free port against this test's fresh database.
- `clinic_app`, `clinic_store` (session): ONE app process, on one database of its own, shared by every browser test
  that allows it (one Streamlit start instead of one per test: the slowest part of these tests). Such a test signs in
  as `clinic_user`, a fresh clinician of its own, so it sees none of the other tests' patients or sessions (RLS) and
  passes alone and in any order; it chooses its own device by name (every clinician sees every device).
  Tests that need an empty database (first-run setup), other settings or an app restart start their own `app`.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import clinic_harness as ui


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not ui.CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (/usr/bin/chromium)")
    return ui.CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = ui.launch_chromium(playwright)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def app_settings() -> dict[str, str]:
    return {}


@pytest.fixture
def app_env(database_url: str, tmp_path: Path, app_settings: dict[str, str]) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "PSYA_DATA_DIR": str(tmp_path / "data"), **app_settings}


@pytest.fixture
def app(chromium, app_env: dict[str, str], tmp_path: Path) -> Iterator[ui.AppProcess]:
    process = ui.AppProcess.start(app_env, tmp_path / "app")
    yield process
    process.stop()


@pytest.fixture(scope="session")
def clinic_database_url(postgres_server) -> Iterator[str]:
    name, url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(name)


@pytest.fixture(scope="session")
def clinic_app(chromium, clinic_database_url: str) -> Iterator[ui.AppProcess]:
    from tests.conftest import private_temp_dir

    workdir = private_temp_dir("psya-e2e-clinic-")  # not under tmp_path: it outlives any one test
    process = ui.AppProcess.start({"DATABASE_URL": clinic_database_url, "PSYA_DATA_DIR": str(workdir / "data")}, workdir)
    yield process
    process.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def clinic_store(clinic_database_url: str):
    """The shared app's database as the system actor (the test's own connection)."""
    from settings import Settings
    from store import open_store

    store = open_store(Settings(database_url=clinic_database_url))
    yield store
    store.close()


@pytest.fixture
def clinic_user(clinic_store) -> ui.User:
    """A clinician of this test's own on the shared app (a unique username), and the store acting as them."""
    from app import auth
    from store.api import Actor

    username = f"dr-{secrets.token_hex(4)}"
    password = f"pw-{secrets.token_hex(8)}"
    clinician = auth.create_clinician(clinic_store, username, f"Dr {username}", password, password, "clinician")
    return ui.User(username, password, clinician, clinic_store.as_actor(Actor.for_clinician(clinician)))
