"""Remote sessions in browser mode end to end: the real app (`streamlit run streamlit_app.py`, REMOTE_ANALYSIS=browser)
on a fresh PostgreSQL database, Debian Chromium whose fake camera plays the reference photos (a Y4M made at test time),
the model running in the patient's browser (LiteRT.js, the built component in frontend/build).

Shown here: readings from the patient's browser land in their session and on the clinician's live dashboard, which says
the session runs in browser mode; no video reaches the server (the patient's page never opens an RTCPeerConnection, and
the server's own counter of video frames received for the session stays at zero); when the patient closes the tab the
dashboard says "Patient disconnected" within seconds (screenshots: artifacts/screenshots/dashboard-*-browser-mode.png);
ending the session stops the readings. And a browser that cannot run the model falls back to server mode, with the patient's second consent, and the
clinician sees why.
"""

from __future__ import annotations

import re
import time
from datetime import date
from pathlib import Path

import cv2
import numpy as np
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from store.models import NewPatient
from tests.e2e.browser_bundle import bundle_skip_reason
from tests.e2e.clinic_harness import CHROMIUM, CHROMIUM_ARGS, screenshot
from tests.e2e.fixtures_video import FRAME_HEIGHT, FRAME_WIDTH, write_y4m
from app.remote import join_link
from tests.e2e.test_remote import (  # noqa: F401 - fixtures used by name
    start_remote_session,
    CONSENT_LABEL, WEBRTC_IFRAME, app_clinician, app_clinician_store, app_server, app_store, chromium_path,
    dashboard_reading_count, log_in, model_env, playwright_instance, start_remote_session_in_ui, wait_for_readings,
    video_relay, wait_until_idle,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

COMPONENT_IFRAME = 'iframe[title*="psya_browser_analysis"]'
# Counts RTCPeerConnections in every frame of the page (the component's iframe included): browser mode must open none.
COUNT_PEER_CONNECTIONS = """
(() => {
  const Original = window.RTCPeerConnection;
  window.__peerConnections = 0;
  if (Original) {
    window.RTCPeerConnection = function (...args) { window.__peerConnections += 1; return new Original(...args); };
    window.RTCPeerConnection.prototype = Original.prototype;
  }
})();
"""
# A browser without WebAssembly (in every frame; the Streamlit page itself does not need it): it cannot run the model.
NO_WEBASSEMBLY = "delete window.WebAssembly;"


@pytest.fixture(autouse=True)
def _needs_bundle():
    reason = bundle_skip_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def remote_analysis() -> str:
    return "browser"


def photo_video(photos_dir: Path, path: Path, fps: int = 10, seconds_per_photo: float = 1.5) -> Path:
    """A looping fake-camera clip of the reference photos, each letterboxed into a 640x480 gray frame."""
    frames = []
    for photo in sorted(photos_dir.iterdir()):
        image = cv2.imread(str(photo), cv2.IMREAD_GRAYSCALE)
        if image is None:
            continue
        scale = min(FRAME_WIDTH / image.shape[1], FRAME_HEIGHT / image.shape[0])
        width, height = round(image.shape[1] * scale) // 2 * 2, round(image.shape[0] * scale) // 2 * 2
        frame = np.full((FRAME_HEIGHT, FRAME_WIDTH), 110, dtype=np.uint8)
        x, y = (FRAME_WIDTH - width) // 2, (FRAME_HEIGHT - height) // 2
        frame[y:y + height, x:x + width] = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        frames.extend([frame] * round(fps * seconds_per_photo))
    assert frames, f"no photos in {photos_dir}"
    write_y4m(path, frames, fps)
    return path


def launch_with_camera(playwright, video: Path):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS + [
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={video}",
    ])


def open_patient_page(browser, link: str, init_scripts: tuple[str, ...] = ()):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.set_default_navigation_timeout(120_000)
    for script in (COUNT_PEER_CONNECTIONS, *init_scripts):
        context.add_init_script(script)
    page = context.new_page()
    page.goto(link)
    wait_until_idle(page)
    page.get_by_text(CONSENT_LABEL).click()
    return page


def metric(page, label: str) -> str:
    value = page.get_by_test_id("stMetric").filter(has_text=label).get_by_test_id("stMetricValue")
    return value.last.inner_text(timeout=5_000).strip()  # the newest while a fragment reruns


def peer_connections(page) -> int:
    return sum(int(frame.evaluate("() => window.__peerConnections || 0")) for frame in page.frames)


def mode_caption(page) -> str:
    return page.get_by_text(re.compile("Analysis mode:")).last.inner_text(timeout=10_000)


def test_browser_mode_readings_reach_the_dashboard_and_no_video_reaches_the_server(
    app_server, app_clinician_store, photos_dir, tmp_path, playwright_instance
):
    video = photo_video(photos_dir, tmp_path / "photos.y4m")
    patient = app_clinician_store.create_patient(NewPatient(full_name="Browser Patient"))
    app_clinician_store.record_consent(patient.id, True, date.today(), "facial analysis during remote sessions")
    browser = launch_with_camera(playwright_instance, video)
    clinician_page = page = None
    try:
        clinician_context = browser.new_context(viewport={"width": 1400, "height": 1500})  # the whole dashboard in a screenshot
        clinician_context.set_default_navigation_timeout(120_000)
        clinician_page = clinician_context.new_page()
        log_in(clinician_page, app_server.url)
        link = start_remote_session_in_ui(clinician_page, app_server.url)
        session = app_clinician_store.list_sessions(patient_id=patient.id, status="live")[0]

        page = open_patient_page(browser, link)
        body = page.inner_text("body")
        assert "Your video stays on your device" in body
        component = page.frame_locator(COMPONENT_IFRAME)
        component.get_by_text(re.compile("video stays on this device")).wait_for(timeout=60_000)
        component.get_by_role("button", name="Start camera").click(timeout=120_000)  # enabled once the model loaded
        started = time.monotonic()
        first = wait_for_readings(app_clinician_store, session.id, 1, timeout=90)
        assert first, f"no reading arrived within 90 s; app log:\n{app_server.log_path.read_text()[-4000:]}"
        print(f"\ntime from 'Start camera' to the first stored reading (browser mode): {time.monotonic() - started:.2f} s")

        readings = wait_for_readings(app_clinician_store, session.id, 12, timeout=90)
        assert len(readings) >= 12
        assert len({r.id for r in readings}) == len(readings)  # nothing stored twice
        assert all(r.session_id == session.id and r.source == "remote" for r in readings)
        for reading in readings:
            x, y, w, h = reading.box
            assert 0 <= x < x + w <= 640 and 0 <= y < y + h <= 480 and w >= 24
            assert abs(sum(reading.probabilities) - 1) < 1e-6
        # Readings go out about once a second in batches: at 4 fps most writes carry several readings.
        times = sorted(r.captured_at for r in readings)
        assert (times[-1] - times[0]).total_seconds() > 2
        component.get_by_text(re.compile(r"Connected: \d+ frames analysed on this device")).wait_for(timeout=30_000)
        assert "Current expression" not in page.inner_text("body")

        # The clinician's dashboard: readings counted, browser mode shown, zero video frames received by the server.
        deadline = time.monotonic() + 30
        while dashboard_reading_count(clinician_page) < len(readings) and time.monotonic() < deadline:
            clinician_page.wait_for_timeout(250)
        assert dashboard_reading_count(clinician_page) >= len(readings)
        caption = mode_caption(clinician_page)
        assert "in the patient's browser" in caption, caption
        assert "video frames received by this server for this session: 0" in caption, caption
        assert clinician_page.locator(WEBRTC_IFRAME).count() == 0  # nothing to relay
        # The patient's page never opened a WebRTC connection: no video RTP could have left it.
        assert page.locator(WEBRTC_IFRAME).count() == 0
        assert peer_connections(page) == 0
        page.screenshot(path=str(tmp_path / "patient-browser-mode.png"), full_page=True)
        screenshot(clinician_page, "dashboard-present-browser-mode")

        # The patient closes the tab: their page's batches stop, and within seconds the dashboard says the patient is
        # gone (not "no face", which is what the page's empty batches say while it is open), with the last reading's age.
        page.context.close()
        clinician_page.get_by_text(re.compile(r"Patient disconnected · last reading \d+ s ago")).first.wait_for(timeout=60_000)
        assert clinician_page.get_by_text(re.compile("No face for")).count() == 0
        assert metric(clinician_page, "Current emotion") == "—"
        assert re.fullmatch(r"\d+ s ago", metric(clinician_page, "Last reading"))
        screenshot(clinician_page, "dashboard-gone-browser-mode")

        # The patient opens the link again: present again, and ending the session ends their page's analysis.
        page = open_patient_page(browser, link)
        page_errors: list[str] = []
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        page.on("console", lambda message: page_errors.append(message.text) if message.type == "error" else None)
        component = page.frame_locator(COMPONENT_IFRAME)
        component.get_by_role("button", name="Start camera").click(timeout=120_000)
        clinician_page.get_by_text("Patient present").first.wait_for(timeout=90_000)

        ended = app_clinician_store.end_session(session.id)
        session_has_ended = page.get_by_text(re.compile("session has ended", re.I)).first
        try:
            session_has_ended.wait_for(timeout=120_000)  # its next check, on busy cores
        except PlaywrightTimeoutError as error:
            body = page.inner_text("body").strip()
            raise AssertionError(f"the patient's page did not say the session ended; page text: {body[-500:]!r}; "
                                 f"page errors: {page_errors[-5:]}") from error
        # Stopped, not merely quiet for a while: the analysis component (and the camera it holds) is gone from the page,
        # and nothing stored for the session was captured after Stop.
        page.locator(COMPONENT_IFRAME).wait_for(state="detached", timeout=60_000)
        stored = app_clinician_store.readings_since(session.id).readings
        assert stored and all(r.captured_at <= ended.ended_at for r in stored)
        assert peer_connections(page) == 0
    except Exception:
        if clinician_page is not None:
            clinician_page.screenshot(path=str(tmp_path / "clinician-at-failure.png"), full_page=True)
        if page is not None and not page.is_closed():
            page.screenshot(path=str(tmp_path / "patient-at-failure.png"), full_page=True)
        raise
    finally:
        browser.close()


# Clears every timer of the component's frame: its camera ticks and its once-a-second batches stop, as in a page whose
# timers a browser has throttled, or one already told the session ended.
SILENCE_COMPONENT = "() => { const last = setTimeout(() => {}, 0); for (let id = 0; id <= last; id++) { clearInterval(id); clearTimeout(id); } }"


def test_a_page_whose_browser_has_gone_quiet_still_ends_with_the_session(
    app_server, app_clinician_store, photos_dir, tmp_path, playwright_instance
):
    """The page's end must not depend on the browser sending anything: its own timer rechecks the link."""
    video = photo_video(photos_dir, tmp_path / "photos.y4m")
    join = start_remote_session(app_clinician_store, "Quiet Browser Patient")
    browser = launch_with_camera(playwright_instance, video)
    page = None
    try:
        page = open_patient_page(browser, join_link(app_server.settings, join.token))
        component = page.frame_locator(COMPONENT_IFRAME)
        component.get_by_role("button", name="Start camera").click(timeout=120_000)
        assert wait_for_readings(app_clinician_store, join.session.id, 1, timeout=90)
        page.locator(COMPONENT_IFRAME).element_handle().content_frame().evaluate(SILENCE_COMPONENT)
        app_clinician_store.end_session(join.session.id)
        page.get_by_text(re.compile("session has ended", re.I)).first.wait_for(timeout=60_000)
        page.locator(COMPONENT_IFRAME).wait_for(state="detached", timeout=60_000)
    except Exception:
        if page is not None and not page.is_closed():
            page.screenshot(path=str(tmp_path / "patient-at-failure.png"), full_page=True)
        raise
    finally:
        browser.close()


def test_a_browser_that_cannot_run_the_model_falls_back_to_server_mode_with_consent(
    app_server, app_clinician_store, photos_dir, tmp_path, playwright_instance
):
    video = photo_video(photos_dir, tmp_path / "photos.y4m")
    patient = app_clinician_store.create_patient(NewPatient(full_name="Old Browser Patient"))
    app_clinician_store.record_consent(patient.id, True, date.today(), "facial analysis during remote sessions")
    browser = launch_with_camera(playwright_instance, video)
    try:
        clinician_context = browser.new_context()
        clinician_context.set_default_navigation_timeout(120_000)
        clinician_page = clinician_context.new_page()
        log_in(clinician_page, app_server.url)
        link = start_remote_session_in_ui(clinician_page, app_server.url)

        page = open_patient_page(browser, link, init_scripts=(NO_WEBASSEMBLY,))
        messages: list[str] = []
        page.on("console", lambda message: messages.append(message.text))
        try:
            page.get_by_text(re.compile("cannot run in your browser here")).wait_for(timeout=60_000)
        except Exception:
            frames = [f.url + " :: " + f.evaluate("() => document.body.innerText + typeof WebAssembly") for f in page.frames]
            raise AssertionError(f"no fallback message; console {messages[-20:]}; frames {frames}; page:\n{page.inner_text('body')[-2000:]}"
                                 f"\napp log:\n{app_server.log_path.read_text()[-3000:]}") from None
        assert "no WebAssembly" in page.inner_text("body")
        # Nothing is streamed before the patient agrees to send their video to the server.
        assert page.locator(WEBRTC_IFRAME).count() == 0
        page.get_by_text("I agree that my camera video is sent to the clinic's server").click()
        page.locator(WEBRTC_IFRAME).wait_for(timeout=60_000)

        # The component's own report ("cannot run the model") comes first; the page's full rerun then reports the reason
        # the patient was shown: wait for that one.
        deadline = time.monotonic() + 30
        while "cannot run the analysis" not in mode_caption(clinician_page) and time.monotonic() < deadline:
            clinician_page.wait_for_timeout(500)
        caption = mode_caption(clinician_page)
        assert "on this server" in caption and "cannot run the analysis" in caption and "no WebAssembly" in caption, caption
        # The session was started without the relay (an explicit choice of server mode): the dashboard says the video
        # is not relayed and offers none, and the patient was told so.
        assert "no video is relayed to this dashboard" in caption, caption
        assert clinician_page.locator(WEBRTC_IFRAME).count() == 0
        assert "not shown to your clinician" in page.inner_text("body")
    finally:
        browser.close()
