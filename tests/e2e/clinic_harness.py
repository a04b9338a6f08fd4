"""Driving the real clinic app in Debian Chromium: start `streamlit run streamlit_app.py` on a reserved port (tests/ports.py) against a given
database, launch Chromium through Playwright (never `playwright install`), and the clinician's steps as small functions.

Used by the browser tests of the clinic (tests/e2e/conftest.py has their fixtures) and by the insert-to-chart benchmark (bench/dashboard.py).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.ports import reserve_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
LIVE_CHART = ".st-key-live_chart .js-plotly-plot"
SCREENSHOTS = PROJECT_ROOT / "artifacts" / "screenshots"  # git-ignored: what the tests saw, for people to look at


@contextlib.contextmanager
def step(name: str):
    """One named step of a scenario test: a failure says which step it was in."""
    try:
        yield
    except Exception as error:
        raise AssertionError(f"step {name!r} failed: {type(error).__name__}: {error}") from error


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout} s")
        time.sleep(interval)


@dataclass(frozen=True)
class User:
    """A clinician account for a test: what they type to log in, and the store acting as them."""

    username: str
    password: str
    clinician: Any
    store: Any = field(repr=False)


@dataclass
class AppProcess:
    """The app as `make run` starts it, on a free port, with the given settings in its environment."""

    url: str
    process: subprocess.Popen
    log_path: Path
    env: dict[str, str] = field(repr=False)

    @classmethod
    def start(cls, settings_env: dict[str, str], workdir: Path, timeout: float = 120.0) -> "AppProcess":
        port = reserve_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "PSYA_SECRETS_FILE": str(workdir / "no-secrets.toml"),
            "PUBLIC_BASE_URL": url,
            "PYTHONPATH": str(PROJECT_ROOT),
            **settings_env,
        }
        workdir.mkdir(parents=True, exist_ok=True)
        log_path = workdir / "streamlit.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
                 "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
                 "--server.fileWatcherType", "none"],
                cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        app = cls(url, process, log_path, env)
        try:
            app._wait_healthy(timeout)
        except Exception:
            app.stop()
            raise
        return app

    def _wait_healthy(self, timeout: float) -> None:
        def healthy() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_until(healthy, timeout, 0.3, "streamlit health")

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def launch_chromium(playwright, extra_args: tuple[str, ...] = ()):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS + list(extra_args))


def screenshot(page, name: str, full_page: bool = True) -> Path:
    """`artifacts/screenshots/<name>.png`."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page, timeout=90_000)
    return path


# --- the clinician's steps ----------------------------------------------------------------------------------------------


def click_until(page, button, done: Callable[[], Any], attempts: int = 3, wait_s: float = 45.0) -> Any:
    """Click `button` (a locator) until `done()` holds, waiting for the app to be idle before each click. On a page whose
    fragments rerun on a timer (the live dashboard) the app is never idle for long, and under a CPU burner a click that
    landed while a fragment redrew was lost (1 of 4 whole-suite runs): nothing happened, as for a user who then clicks
    again. Only a click with no visible effect is repeated, so a button that does nothing still fails."""
    for attempt in range(1, attempts + 1):
        wait_for_app_idle(page, 120)
        button.click()
        try:
            return wait_until(done, wait_s, 0.25, "the click's effect")
        except TimeoutError:
            if attempt == attempts:
                raise TimeoutError(f"{attempts} clicks had no visible effect within {wait_s} s each") from None


def wait_for_app_idle(page, timeout: float = 30.0, quiet_s: float = 0.5) -> None:
    """Until Streamlit has finished its script runs (the app root's script state is "notRunning") for `quiet_s` in a
    row. Right after a page loads, the cookie component reports back and causes one or two more runs; a click that
    lands while a run redraws its form can be lost, so every step waits for this before it types or clicks."""
    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        running = page.evaluate(
            "() => { const app = document.querySelector('[data-testid=\"stApp\"]');"
            " return !app || app.dataset.testScriptState !== 'notRunning'; }"
        )
        if running:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            return
        time.sleep(0.05)
    raise TimeoutError(f"the app kept running for {timeout} s")


def goto(page, url: str) -> None:
    page.goto(url)
    page.get_by_test_id("stApp").wait_for(timeout=60_000)
    wait_for_app_idle(page, 120)


def first_run_setup(page, url: str, name: str, username: str, password: str) -> None:
    goto(page, url)
    page.get_by_text("Create the first (admin) clinician").first.wait_for(timeout=60_000)
    page.get_by_role("textbox", name="Full name").fill(name)
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password", exact=True).fill(password)
    page.get_by_role("textbox", name="Repeat the password").fill(password)
    page.get_by_role("button", name="Create the first (admin) clinician").click()
    page.get_by_role("heading", name="Patients").wait_for(timeout=30_000)
    wait_for_login_cookie(page)


def log_in(page, url: str, username: str, password: str) -> None:
    goto(page, url)
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Patients").wait_for(timeout=30_000)
    wait_for_login_cookie(page)


def wait_for_login_cookie(page, timeout: float = 30.0) -> None:
    """Until the browser holds the signed login cookie, so the next `goto` (a new Streamlit session) stays logged in."""
    wait_until(lambda: any(c["name"] == "psya_login" for c in page.context.cookies()), timeout, 0.1, "the login cookie")


def create_patient_with_consent(page, url: str, name: str, diagnosis: str) -> None:
    goto(page, f"{url}/patients")
    field = page.get_by_role("textbox", name="Full name")
    try:  # the "New patient" expander starts open when the list is empty: wait for it rather than race its render
        field.wait_for(state="visible", timeout=15_000)
    except Exception:
        page.get_by_text("New patient").click()
    field.fill(name)
    page.get_by_role("textbox", name="Diagnosis").fill(diagnosis)
    page.get_by_text("The patient consents to facial analysis during sessions").click()
    page.get_by_role("button", name="Create patient").click()
    page.get_by_role("heading", name=name).wait_for(timeout=30_000)


def register_device(page, url: str, name: str, room: str) -> tuple[str, str]:
    """Register a Pi device on the Devices page; returns (device id, key) read from the shown-once block."""
    goto(page, f"{url}/devices")
    page.get_by_text("Register a Pi device").click()
    page.get_by_role("textbox", name="Name").wait_for(timeout=30_000)
    page.get_by_role("textbox", name="Name").fill(name)
    page.get_by_role("textbox", name="Room").fill(room)
    page.get_by_role("button", name="Register").click()
    block = page.get_by_test_id("stCode").filter(has_text="PSYA_DEVICE_KEY")
    block.wait_for(timeout=30_000)
    values = dict(line.split("=", 1) for line in block.inner_text().strip().splitlines()
                  if line.strip() and not line.lstrip().startswith("#"))  # the env file has comment lines
    return values["PSYA_DEVICE_ID"].strip(), values["PSYA_DEVICE_KEY"].strip()


def choose(page, label: str, option: str) -> None:
    """Pick the option whose text contains `option` in the Streamlit selectbox labelled `label`."""
    box = page.get_by_test_id("stSelectbox").filter(has_text=label)
    box.wait_for(timeout=30_000)
    if option in box.inner_text():
        return  # already chosen
    box.get_by_role("combobox").click()
    page.get_by_role("option").filter(has_text=option).first.click()
    wait_for_app_idle(page)


def start_in_person_session(page, url: str, device_name: str | None = None) -> str:
    """Start an in-person session for the first eligible patient, on the device named `device_name` (default: the
    first listed); returns the session id."""
    goto(page, f"{url}/sessions")
    if device_name is not None:
        choose(page, "Room camera (Pi device)", f"{device_name} ·")
    page.get_by_role("button", name="Start in-person session").click()
    page.wait_for_url(re.compile(r"/live\?session="), timeout=30_000)
    return re.search(r"session=([0-9a-f-]{36})", page.url).group(1)


def open_review(page, expected_readings: str) -> None:
    """From a session's page, "Review the session": wait for the review's reading count to read `expected_readings`
    and its chart to be drawn."""
    page.get_by_role("link", name="Review the session").click()
    page.get_by_role("heading", name="Session review").wait_for(timeout=30_000)
    wait_until(lambda: metric_value(page, "Readings") == expected_readings, 30, 0.25, "the review's reading count")
    page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)


def download_readings_csv(page) -> list[dict[str, str]]:
    """The review page's "Readings (CSV)" download, parsed."""
    wait_for_app_idle(page)
    with page.expect_download(timeout=30_000) as download:
        page.get_by_role("button", name="Readings (CSV)").click()
    return list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))


def metric_value(page, label: str) -> str:
    metric = page.get_by_test_id("stMetric").filter(has_text=label).get_by_test_id("stMetricValue")
    # During a fragment rerun the previous run's elements linger beside the new ones: the newest is the last.
    return metric.last.inner_text(timeout=5_000).strip()


# Plotly keeps the figure as sent (numbers arrive base64-encoded, {"dtype", "bdata"}) in `el.data`; the decoded arrays it
# draws are in `el._fullData`.
_LIVE_X = f"""() => {{ const el = document.querySelector('{LIVE_CHART}');
  if (!el || !el._fullData || !el._fullData.length) return null; return Array.from(el._fullData[0].x || []); }}"""


def chart_points(page) -> int:
    """How many points the live chart's first trace draws right now (0 when the chart is not drawn yet)."""
    x = page.evaluate(_LIVE_X)
    return len(x) if x else 0


def chart_last_x(page) -> float | None:
    """The last x (seconds since start) the live chart draws, or None."""
    x = page.evaluate(_LIVE_X)
    return float(x[-1]) if x else None
