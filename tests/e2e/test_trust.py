"""Issue 12 in Debian Chromium against the real app (`streamlit run`): what the clinician sees can be trusted.

- Presence: the live dashboard says when the patient's face is gone and drops the current emotion; notes stop with the
  session; Stop means stop (dashboard, review and CSV agree); the report writes the session's times with seconds.
- No orphaned or duplicate sessions: one live session per patient (return to it or end it), the join link shown again
  after a reload and replaced by "New link" (the old one refused), an idle live session ended by itself (audited).
- Honest numbers: a mostly happy session has a positive valence, its peaks are listed, and a first-minute baseline of a
  40 s session says it cannot be computed.

The scenarios share one app process (`clinic_app`, tests/e2e/conftest.py), each as a clinician of its own; the
automatic end needs a short idle time, so it starts its own. Screenshots (artifacts/screenshots/): dashboard-present,
dashboard-gone, review, report, review-short-session.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e import clinic_harness as ui

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
JOIN_CONSENT = "I have read the above and agree to facial analysis"
INVALID_LINK = "This session link is not valid"


def shot(page, name: str, full_page: bool = True) -> None:
    ui.screenshot(page, name, full_page)


def new_context(browser, **options):
    return browser.new_context(viewport={"width": 1400, "height": 1500}, **options)


def on_failure(app, page) -> None:
    shot(page, f"trust-failure-{secrets.token_hex(3)}")
    print(app.log_tail())


def backdate_session(database_url: str, session_id, seconds: float) -> None:
    """Move a just-started session's start `seconds` into the past (the database owner's connection: only tests rewrite
    history), so readings can be written for a session that has been running that long."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("UPDATE public.sessions SET started_at = started_at - make_interval(secs => %s) WHERE id = %s",
                           (seconds, session_id))


def join_link_shown(page) -> str:
    code = page.get_by_test_id("stCode").filter(has_text="/join?token=")
    code.last.wait_for(timeout=60_000)
    return code.last.inner_text().strip()


# --- presence, one clock, Stop means stop, the report ------------------------------------------------------------------


def test_presence_stop_means_stop_and_the_report_in_a_real_browser(clinic_app, clinic_user, browser):
    from tests.app.helpers import consenting_patient

    user = clinic_user
    user.store.set_time_zone("Europe/Madrid")  # the clinician's own zone: the report's times are written in it
    consenting_patient(user.store, "Tomás Ureña")
    registration = user.store.register_device(f"pi-{secrets.token_hex(3)}", "Room 1")
    context = new_context(browser, accept_downloads=True)
    page = context.new_page()
    try:
        ui.log_in(page, clinic_app.url, user.username, user.password)
        presence_and_stop(clinic_app, page, registration)
    except Exception:
        on_failure(clinic_app, page)
        raise
    finally:
        context.close()


def presence_and_stop(app, page, registration) -> None:
    with ui.step("start the in-person session"):
        ui.start_in_person_session(page, app.url, registration.device.name)
        page.get_by_text("Waiting for the first reading").first.wait_for(timeout=30_000)

    writer = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.device_writer", "--device-id", str(registration.device.id), "--count", "40", "--interval", "0.2"],
        cwd=ui.PROJECT_ROOT, env={**app.env, "PSYA_DEVICE_KEY": registration.key}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        with ui.step("readings arrive: patient present"):
            ui.wait_until(lambda: page.get_by_text("Patient present").count() > 0, 60, 0.2, "'Patient present' on the dashboard")
            ui.wait_until(lambda: int(ui.metric_value(page, "Readings") or 0) >= 10, 30, 0.2, "readings on the dashboard")
            shot(page, "dashboard-present")
    finally:
        output, _ = writer.communicate(timeout=60)
    assert writer.returncode == 0, output

    with ui.step("the agent stops sending: no face, no stale current emotion, the last reading's age"):
        ui.wait_until(lambda: page.get_by_text(re.compile(r"No face for \d+ s")).count() > 0, 15, 0.2, "'No face for N s'")
        ui.wait_until(lambda: ui.metric_value(page, "Current emotion") == "—", 10, 0.2, "no stale current emotion")
        assert re.fullmatch(r"\d+ s ago", ui.metric_value(page, "Last reading"))
        shot(page, "dashboard-gone")

    with ui.step("Stop: no note after the end"):
        ui.wait_until(lambda: ui.metric_value(page, "Readings") == "40", 10, 0.2, "40 readings on the dashboard")
        page.get_by_role("button", name="Stop session").click()
        page.get_by_text("This session ended").wait_for(timeout=30_000)
        page.get_by_text("The session has ended: notes are added in the review").wait_for(timeout=30_000)
        assert page.get_by_role("textbox", name="Note at this moment").count() == 0
        assert page.get_by_role("button", name="Add note").count() == 0
        dashboard = ui.metric_value(page, "Readings")

    with ui.step("Stop means stop: the review and the CSV count what the dashboard counted"):
        ui.open_review(page, expected_readings=dashboard)
        page.get_by_text("Usable face in").first.wait_for(timeout=30_000)
        shot(page, "review")
        rows = ui.download_readings_csv(page)
        assert str(len(rows)) == dashboard == "40"

    with ui.step("the report writes the session's times with seconds, in the clinician's zone"):
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


# --- no orphaned or duplicate sessions -------------------------------------------------------------------------------


def test_one_live_session_per_patient_and_the_join_link_after_a_reload(clinic_app, clinic_user, browser):
    from tests.app.helpers import consenting_patient

    user = clinic_user
    patient = consenting_patient(user.store, "Ulises Vera")
    device = user.store.register_device(f"pi-{secrets.token_hex(3)}", "Room 2").device
    live = user.store.start_session(patient.id, "in_person", device.id)
    context = new_context(browser)
    page = context.new_page()
    try:
        ui.log_in(page, clinic_app.url, user.username, user.password)
        with ui.step("starting another session for the patient offers to return to the live one"):
            ui.goto(page, f"{clinic_app.url}/sessions?patient={patient.id}")
            page.get_by_text("Ulises Vera already has a live session").wait_for(timeout=30_000)
            assert page.get_by_role("button", name="Start in-person session").count() == 0
            page.get_by_role("link", name="Return to the live session").click()
            page.wait_for_url(re.compile(rf"/live\?session={live.id}"), timeout=30_000)
            page.get_by_role("button", name="Stop session").wait_for(timeout=30_000)

        with ui.step("... or to end it, after which a new one can start"):
            ui.goto(page, f"{clinic_app.url}/sessions?patient={patient.id}")
            page.get_by_role("button", name="End it").click()
            page.get_by_text("Ended the live session of Ulises Vera").wait_for(timeout=30_000)
            assert user.store.get_session(live.id).status == "ended"

        with ui.step("a remote session's join link is shown again after a reload"):
            page.get_by_text("Remote (patient's browser)").click()
            ui.wait_for_app_idle(page)
            page.get_by_role("button", name="Start remote session").click()
            page.wait_for_url(re.compile(r"/live\?session="), timeout=30_000)
            first = join_link_shown(page)
            page.reload()  # a new Streamlit session: the plain link is gone from memory, the encrypted one is kept
            page.get_by_test_id("stApp").wait_for(timeout=60_000)
            ui.wait_for_app_idle(page, 120)
            assert join_link_shown(page) == first

        with ui.step("'New link' replaces it: the old one is refused, the new one opens the patient's page"):
            renewed = page.get_by_text(re.compile(r"New link made .*: the old one no longer works"))
            ui.click_until(page, page.get_by_role("button", name="New link"), lambda: renewed.count() > 0)
            second = ui.wait_until(lambda: (link := join_link_shown(page)) != first and link, 60, 0.25, "a new link shown")
            patient_page = browser.new_context().new_page()
            patient_page.goto(first)
            patient_page.get_by_text(INVALID_LINK).wait_for(timeout=60_000)
            patient_page.goto(second)
            patient_page.get_by_text(JOIN_CONSENT).wait_for(timeout=60_000)
            patient_page.context.close()
            page.reload()
            page.get_by_test_id("stApp").wait_for(timeout=60_000)
            ui.wait_for_app_idle(page, 120)
            assert join_link_shown(page) == second
    except Exception:
        on_failure(clinic_app, page)
        raise
    finally:
        context.close()


@pytest.fixture
def idle_app(chromium, database_url: str, tmp_path: Path):
    """The app with a 3 s idle time (IDLE_SESSION_MINUTES=0.05): a session nobody uses ends within seconds."""
    process = ui.AppProcess.start({"DATABASE_URL": database_url, "PSYA_DATA_DIR": str(tmp_path / "data"),
                                   "IDLE_SESSION_MINUTES": "0.05"}, tmp_path / "app")
    yield process
    process.stop()


def test_an_idle_live_session_ends_by_itself_with_an_audit_entry(idle_app, database_url, browser):
    from app import auth
    from settings import Settings
    from store import open_store
    from store.api import Actor
    from tests.app.helpers import consenting_patient

    system = open_store(Settings(database_url=database_url))
    context = new_context(browser)
    page = context.new_page()
    try:
        clinician = auth.create_first_admin(system, "idle-admin", "Dr Idle", "idle-admin-pw-9", "idle-admin-pw-9")
        mine = system.as_actor(Actor.for_clinician(clinician))
        patient = consenting_patient(mine, "Valeria Wong")
        device = mine.register_device("pi-idle", "Room 9").device
        session = mine.start_session(patient.id, "in_person", device.id)
        ui.log_in(page, idle_app.url, "idle-admin", "idle-admin-pw-9")

        with ui.step("no reading and no note for the idle time: the next visit of the Sessions page ends it and says so"):
            def ended_notice() -> bool:
                ui.goto(page, f"{idle_app.url}/sessions")
                return page.get_by_text("Ended automatically: a live session idle since").count() > 0

            ui.wait_until(ended_notice, 90, 0.5, "the automatic end on the Sessions page")
            page.get_by_text("No live session.").wait_for(timeout=30_000)
            assert mine.get_session(session.id).status == "ended"

        with ui.step("the automatic end is audited"):
            audit = {(e.action, e.entity, e.entity_id) for e in system.list_audit()}
            assert ("auto_end", "session", str(session.id)) in audit
    except Exception:
        on_failure(idle_app, page)
        raise
    finally:
        context.close()
        system.close()


# --- honest numbers --------------------------------------------------------------------------------------------------


def probabilities(happy: float, neutral: float) -> tuple[float, ...]:
    rest = (1 - happy - neutral) / 5
    return tuple(happy if label == "happy" else neutral if label == "neutral" else rest for label in LABELS)


PEAK_STARTS_S = (8, 20, 32)  # seconds after the first reading
READINGS_FROM_S = 2  # the first reading, seconds after the session's start


def mostly_happy_readings(session, start: datetime):
    """40 s, two readings a second: happy the most likely throughout (0.45 against 0.35 neutral), rising to 0.9 for 2 s
    three times."""
    from store.models import Reading

    readings = []
    for index in range(80):
        t = index * 0.5
        peak = any(a <= t <= a + 2 for a in PEAK_STARTS_S)
        readings.append(Reading(session.id, start + timedelta(seconds=t), probabilities(0.9, 0.05) if peak else probabilities(0.45, 0.35),
                                "pi", box=(200, 150, 120, 120)))
    return readings


def peak_times(page) -> list[float]:
    """The x (seconds since the start) of the review timeline's "peaks" trace (as Plotly drew them)."""
    return page.evaluate(
        """() => { const el = document.querySelector('.js-plotly-plot');
             if (!el || !el._fullData) return [];
             const trace = el._fullData.find(t => t.name === 'peaks');
             return trace ? Array.from(trace.x || []).map(Number) : []; }""")


def test_the_review_of_a_short_mostly_happy_session(clinic_app, clinic_user, clinic_store, clinic_database_url, browser):
    from store.api import Actor
    from tests.app.helpers import consenting_patient

    user = clinic_user
    patient = consenting_patient(user.store, "Wanda Yusta")
    registration = user.store.register_device(f"pi-{secrets.token_hex(3)}", "Room 3")
    session = user.store.start_session(patient.id, "in_person", registration.device.id)
    backdate_session(clinic_database_url, session.id, 45)
    device = clinic_store.as_actor(Actor.for_device(registration.device.id))
    started_at = user.store.get_session(session.id).started_at  # the review's time 0:00
    device.insert_readings(mostly_happy_readings(session, started_at + timedelta(seconds=READINGS_FROM_S)))
    user.store.end_session(session.id)

    context = new_context(browser, accept_downloads=True)
    page = context.new_page()
    try:
        ui.log_in(page, clinic_app.url, user.username, user.password)
        ui.goto(page, f"{clinic_app.url}/review?session={session.id}")
        page.get_by_role("heading", name="Session review").wait_for(timeout=30_000)
        ui.wait_until(lambda: ui.metric_value(page, "Readings") == "80", 60, 0.25, "the review's count")

        with ui.step("valence: a mostly happy session scores positive"):
            assert ui.metric_value(page, "Most frequent") == "happy"
            valence = ui.metric_value(page, "Valence index")
            assert re.fullmatch(r"\+0\.\d\d", valence) and float(valence) > 0.1, valence

        with ui.step("baseline: a first-minute baseline of a 40 s session says it cannot be computed"):
            page.get_by_text("First minute of this session").click()
            page.get_by_text(re.compile(r"No first-minute baseline: the readings cover only \d+ s")).wait_for(timeout=30_000)
            assert page.get_by_text("Change against the baseline").count() == 0  # no chart of zero change
            ui.wait_for_app_idle(page)
            shot(page, "review-short-session")

        with ui.step("peaks: the three rises of happy are marked on the review timeline and listed in the report"):
            # found on the readings, not on the 5 s smoothing (whose happy line stays below 0.7)
            expected_x = [float(READINGS_FROM_S + start) for start in PEAK_STARTS_S]
            ui.wait_until(lambda: peak_times(page) == expected_x, 30, 0.25, f"peaks at {expected_x} s on the timeline")
            ui.wait_for_app_idle(page)
            with page.expect_download(timeout=30_000) as report_download:
                page.get_by_role("button", name="Printable report (HTML)").click()
            html = Path(report_download.value.path()).read_text()
            peaks_section = html[html.index("<h2>Peaks</h2>"):].split("</section>")[0]
            peaks = re.findall(r"<tr><td>(\d+:\d\d)</td><td>(\w+)</td><td>(\d\.\d\d)</td>", peaks_section)
            assert peaks == [(f"0:{READINGS_FROM_S + start:02d}", "happy", "0.90") for start in PEAK_STARTS_S], peaks
            assert "No first-minute baseline" in html  # the report says so too
    except Exception:
        on_failure(clinic_app, page)
        raise
    finally:
        context.close()
