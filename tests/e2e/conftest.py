"""Fixtures of the browser tests that drive the real clinic app (tests/e2e/clinic_harness.py).

- `chromium`: Debian's /usr/bin/chromium (the test skips cleanly without it; never `playwright install`).
- `browser` (module): one headless Chromium per test module; each test opens its own context (own cookies, own pages).
- `app_settings`: extra settings (env vars) for the app process; a module overrides it for its own.
- `app_env`, `app` (function): `streamlit run streamlit_app.py` on a free port against this test's fresh database.
- `module_database_url`, `module_app_env`, `module_app` (module): one database and one app process shared by the tests
  of a module that allow it (each test then makes its own clinician, so tests see nothing of each other's: RLS).
"""

from __future__ import annotations

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
