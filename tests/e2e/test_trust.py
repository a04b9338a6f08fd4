"""Issue 12 in Debian Chromium against the real app (`streamlit run`): the live dashboard says when the patient's face
is gone and drops the current emotion, notes stop with the session, Stop means stop (dashboard, review and CSV agree),
the report writes the session's times with seconds. Screenshots (artifacts/screenshots/trust-*.png): the live
dashboard with the patient present and gone, the review, the printable report.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e import clinic_harness as ui

pytestmark = [pytest.mark.browser, pytest.mark.slow]

def shot(page, name: str, full_page: bool = True) -> None:
    ui.screenshot(page, f"trust-{name}", full_page)


@pytest.fixture(scope="module")
def app_settings() -> dict[str, str]:
    return {"DEFAULT_TIME_ZONE": "Europe/Madrid"}


def test_presence_stop_means_stop_and_the_report_in_a_real_browser(app, browser):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1500})
    page = context.new_page()
    try:
        run(app, page)
    except Exception:
        shot(page, "failure")
        print(app.log_tail())
        raise
    finally:
        context.close()


def create_patient(page, url: str, name: str) -> None:
    """As the harness's helper, but waits for the form the empty list opens instead of racing its render."""
    ui.goto(page, f"{url}/patients")
    field = page.get_by_role("textbox", name="Full name")
    try:
        field.wait_for(state="visible", timeout=15_000)
    except Exception:
        page.get_by_text("New patient").click()
    field.fill(name)
    page.get_by_text("The patient consents to facial analysis during sessions").click()
    page.get_by_role("button", name="Create patient").click()
    page.get_by_role("heading", name=name).wait_for(timeout=30_000)


def run(app, page) -> None:
    ui.first_run_setup(page, app.url, "Dr Nuria Prats", "nuria", "first-admin-pw-7")
    create_patient(page, app.url, "Tomás Ureña")
    page.get_by_text("Consent to facial analysis given").first.wait_for(timeout=30_000)
    device_id, key = ui.register_device(page, app.url, "pi-room-1", "Room 1")
    ui.start_in_person_session(page, app.url)
    page.get_by_text("Waiting for the first reading").first.wait_for(timeout=30_000)

    writer = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.device_writer", "--device-id", device_id, "--count", "40", "--interval", "0.2"],
        cwd=ui.PROJECT_ROOT, env={**app.env, "PSYA_DEVICE_KEY": key}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        ui.wait_until(lambda: page.get_by_text("Patient present").count() > 0, 60, 0.2, "'Patient present' on the dashboard")
        ui.wait_until(lambda: int(ui.metric_value(page, "Readings") or 0) >= 10, 30, 0.2, "readings on the dashboard")
        shot(page, "live-present")
    finally:
        output, _ = writer.communicate(timeout=60)
    assert writer.returncode == 0, output

    # The agent stops sending (the patient left the camera's view): within a few seconds the dashboard says so.
    ui.wait_until(lambda: page.get_by_text(re.compile(r"No face for \d+ s")).count() > 0, 15, 0.2, "'No face for N s'")
    ui.wait_until(lambda: ui.metric_value(page, "Current emotion") == "—", 10, 0.2, "no stale current emotion")
    assert re.fullmatch(r"\d+ s ago", ui.metric_value(page, "Last reading"))
    shot(page, "live-gone")

    ui.wait_until(lambda: ui.metric_value(page, "Readings") == "40", 10, 0.2, "40 readings on the dashboard")
    page.get_by_role("button", name="Stop session").click()
    page.get_by_text("This session ended").wait_for(timeout=30_000)
    assert page.get_by_role("textbox", name="Note at this moment").count() == 0  # no note after the end
    dashboard = ui.metric_value(page, "Readings")

    page.get_by_role("link", name="Review the session").click()
    page.get_by_role("heading", name="Session review").wait_for(timeout=30_000)
    ui.wait_until(lambda: ui.metric_value(page, "Readings") == dashboard, 30, 0.25, "the review's count")
    page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
    page.get_by_text("Usable face in").first.wait_for(timeout=30_000)
    shot(page, "review")

    ui.wait_for_app_idle(page)
    with page.expect_download(timeout=30_000) as download:
        page.get_by_role("button", name="Readings (CSV)").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert str(len(rows)) == dashboard == "40"  # Stop means stop: one count everywhere

    ui.wait_for_app_idle(page)
    with page.expect_download(timeout=30_000) as report_download:
        page.get_by_role("button", name="Printable report (HTML)").click()
    report_path = Path(report_download.value.path())
    html = report_path.read_text()
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d-\d\d:\d\d:\d\d CE[S]?T", html), "times with seconds in Europe/Madrid"
    as_html = report_path.parent / "session-report.html"  # the download has no suffix: Chromium would show the source
    as_html.write_text(html)
    report = page.context.new_page()
    report.goto(as_html.resolve().as_uri())
    report.get_by_text("Session report").first.wait_for(timeout=30_000)
    shot(report, "report", full_page=False)  # the summary; the full page re-renders every embedded chart
    report.close()
