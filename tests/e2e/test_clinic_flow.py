"""The clinician's day end to end, in Debian Chromium against the real app (`streamlit run streamlit_app.py`) on a fresh
database: first-run setup, login (and staying logged in across a reload), create a patient with consent, register the
room's Pi device, start an in-person session, readings written by a separate agent process appear on the live
dashboard, a note, stop, the review page, the CSV export, logout. Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.e2e import clinic_harness as ui

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ADMIN = ("Dr Elena Ortiz", "elena", "first-admin-pw-7")


def shot(page, name: str) -> None:
    ui.screenshot(page, f"clinic-{name}")


def run_device_writer(app: ui.AppProcess, device_id: str, key: str, count: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.device_writer", "--device-id", device_id, "--count", str(count), "--interval", "0.2"],
        cwd=ui.PROJECT_ROOT,
        env={**app.env, "PSYA_DEVICE_KEY": key},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_first_run_to_reviewed_session_with_readings_from_a_device_process(app, browser, database_url):
    name, username, password = ADMIN
    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1600})
    page = context.new_page()
    try:
        clinic_day(app, page, database_url, name, username, password)
    except Exception:
        shot(page, "failure")
        print(app.log_tail())
        raise
    finally:
        context.close()


def clinic_day(app, page, database_url, name, username, password) -> None:
    from settings import Settings
    from store import open_store

    # First run: no account exists, and there is no default password: the app asks for the first (admin) clinician.
    ui.first_run_setup(page, app.url, name, username, password)
    shot(page, "01-patients-after-setup")
    page.reload()  # the signed login cookie (a JWT; first_run_setup waited for it) keeps the clinician logged in
    page.get_by_role("heading", name="Patients").wait_for(timeout=30_000)

    ui.create_patient_with_consent(page, app.url, "Marta Quiroga", "Panic disorder")
    # The heading renders before the rest of the page: wait for the consent line rather than reading the body at once.
    page.get_by_text("Consent to facial analysis given").first.wait_for(timeout=30_000)
    shot(page, "02-patient")

    device_id, key = ui.register_device(page, app.url, "pi-room-1", "Room 1")
    shot(page, "03-device-registered")

    session_id = ui.start_in_person_session(page, app.url)
    page.get_by_text("Waiting for the first reading").wait_for(timeout=30_000)

    writer = run_device_writer(app, device_id, key, count=30)
    try:
        ui.wait_until(lambda: ui.metric_value(page, "Readings") == "30", 60, 0.25, "30 readings on the dashboard")
        ui.wait_until(lambda: ui.chart_points(page) == 30, 60, 0.1, "30 points on the live chart")
    finally:
        output, _ = writer.communicate(timeout=60)
    assert writer.returncode == 0, output
    assert ui.metric_value(page, "Current emotion") in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    shot(page, "04-live-dashboard")

    page.get_by_role("textbox", name="Note at this moment").fill("patient described the first attack")
    page.get_by_role("button", name="Add note").click()
    page.get_by_text("patient described the first attack").wait_for(timeout=30_000)
    page.get_by_role("button", name="Stop session").click()
    page.get_by_text("This session ended").wait_for(timeout=30_000)

    ui.open_review(page, expected_readings="30")
    page.get_by_text("Decision support, not a diagnosis").first.wait_for(timeout=30_000)
    shot(page, "05-review")

    rows = ui.download_readings_csv(page)
    store = open_store(Settings(database_url=database_url))
    try:
        stored = store.readings_since(uuid.UUID(session_id)).readings
        assert len(rows) == len(stored) == 30
        assert {r["dominant"] for r in rows} <= {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
        ui.wait_for_app_idle(page)
        with page.expect_download(timeout=30_000) as report_info:
            page.get_by_role("button", name="Printable report (HTML)").click()
        report = Path(report_info.value.path()).read_text()
        assert "Marta Quiroga" in report and "patient described the first attack" in report

        page.get_by_role("button", name="Log out").click()
        page.get_by_text("You have logged out.").wait_for(timeout=30_000)
        page.reload()  # the cookie is gone (and refused if it were not): the login form again
        page.get_by_role("button", name="Log in").wait_for(timeout=30_000)
        shot(page, "06-logged-out")
        ui.log_in(page, app.url, username, password)
        actions = {e.action for e in store.list_audit()}
        assert {"create", "view", "export_csv", "export_report", "logout", "login"} <= actions
    finally:
        store.close()


def test_make_run_defaults_open_a_working_app_on_the_embedded_database(chromium, browser, tmp_path):
    """No DATABASE_URL and no secrets: the app starts its own embedded PostgreSQL under PSYA_DATA_DIR and asks for the
    first clinician (what `make run` does on a fresh machine)."""
    import shutil

    from store.embedded import EmbeddedPostgres
    from tests.conftest import private_temp_dir

    # Not under tmp_path: the server runs as its own system user, and every other pytest run on this machine resets
    # /tmp/pytest-of-root to mode 0700, locking that user out of its data directory in the middle of the test.
    data_dir = private_temp_dir("psya-test-fresh-machine-")
    env = {"PSYA_DATA_DIR": str(data_dir), "DATABASE_URL": "", "SUPABASE_URL": "", "SUPABASE_KEY": ""}
    app = ui.AppProcess.start(env, tmp_path, timeout=180)
    try:
        page = browser.new_page()
        # The very first request of the process asks for a deep page: it still goes through streamlit_app.py (login),
        # not Streamlit's legacy pages/ mode that would run the page file alone and list every file in the sidebar.
        page.goto(f"{app.url}/live")
        page.get_by_text("Create the first (admin) clinician").first.wait_for(timeout=120_000)
        ui.wait_for_app_idle(page)
        assert page.get_by_role("link", name="live").count() == 0 and page.get_by_role("link", name="patients").count() == 0
        shot(page, "00-first-run")
        assert (data_dir / "cookie_key").is_file()  # generated once, kept with the data
    finally:
        app.stop()
        EmbeddedPostgres(data_dir).stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def test_the_real_pi_agent_on_a_clip_feeds_the_live_dashboard(clinic_app, clinic_user, clinic_database_url, browser, photos_dir, tmp_path):
    """The room's agent as it runs on a Pi (`python -m pi_agent run`), with a video file standing in for the camera and
    the real model: once the clinician starts the in-person session, its readings show on the dashboard."""
    import signal

    from tests.app.helpers import PHOTOS, consenting_patient, write_face_video
    from tests.conftest import SHARED_DIR
    from tests.e2e.fixtures_video import model_for_tests

    app, database_url, mine = clinic_app, clinic_database_url, clinic_user.store  # the shared app, as a clinician of its own
    username, password = clinic_user.username, clinic_user.password
    consenting_patient(mine, "Nora Agent")
    registration = mine.register_device(f"pi-agent-{uuid.uuid4().hex[:6]}", "Room 2")
    clip = write_face_video(photos_dir, PHOTOS * 4, tmp_path / "camera.mp4", fps=10.0, seconds_each=1.0)
    model = model_for_tests(SHARED_DIR / "anchors", tmp_path / "model")  # the shipped model (None) unless it is missing
    env = {k: v for k, v in app.env.items() if not k.startswith("PSYA_")}
    env.update({"DATABASE_URL": database_url, "PSYA_DEVICE_ID": str(registration.device.id), "PSYA_DEVICE_KEY": registration.key,
                "PSYA_DATA_DIR": str(tmp_path / "agent"), "PSYA_AGENT_ENV_FILE": str(tmp_path / "none.env"),
                "PSYA_SESSION_POLL_SECONDS": "1", "PSYA_BATCH_SECONDS": "0.5"})
    command = [sys.executable, "-m", "pi_agent", "run", "--source", str(clip), "--fps", "4"]
    if model is not None:
        command += ["--model", str(model)]
    agent = subprocess.Popen(command, cwd=ui.PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1600})
    page = context.new_page()
    try:
        ui.log_in(page, app.url, username, password)
        session_id = ui.start_in_person_session(page, app.url, registration.device.name)
        ui.wait_until(lambda: int(ui.metric_value(page, "Readings") or 0) >= 5, 90, 0.25, "agent readings on the dashboard")
        ui.wait_until(lambda: ui.chart_points(page) >= 5, 60, 0.1, "agent readings on the chart")
        shot(page, "07-live-from-pi-agent")
        readings = mine.readings_since(uuid.UUID(session_id)).readings
        assert readings and {r.source for r in readings} == {"pi"}
    except Exception:
        shot(page, "failure-pi-agent")
        raise
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            output, _ = agent.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            agent.kill()
            output, _ = agent.communicate()
        context.close()
    assert "Traceback" not in output, output
