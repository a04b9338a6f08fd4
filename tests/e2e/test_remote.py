"""Remote sessions end to end: the real app (`streamlit run streamlit_app.py`) on a fresh PostgreSQL database, Debian
Chromium with a fake camera playing real FER2013 faces, WebRTC over loopback, the real model on the server.

The clinician starts a remote session, the patient's browser context opens the join link, ticks consent and presses
"Start camera" inside the streamlit-webrtc iframe; readings must land in the database under that session and show on the
clinician's live dashboard. A second test runs three patients at once, each video with the face at a different place,
and checks by the face box that every reading landed in its own patient's session.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from app.links import RELAY_CHOICE_LABEL
from app.remote import INVALID_LINK_MESSAGE, join_link
from settings import Settings
from store.errors import InvalidToken, SessionNotLive
from store.models import NewPatient, Reading, RemoteJoin
from tests.conftest import SHARED_DIR
from tests.e2e.clinic_harness import CHROMIUM, CHROMIUM_ARGS, AppProcess
from tests.e2e.clinic_harness import goto as ui_goto, wait_for_login_cookie
from tests.e2e.fixtures_video import PATIENT_FACE_BOXES, FaceVideo, make_face_video, model_for_tests, pick_face_images

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WEBRTC_IFRAME = 'iframe[title^="streamlit_webrtc"]'
CONSENT_LABEL = "I have read the above and agree to facial analysis"
CLINICIAN_USERNAME = "dr.remote"
CLINICIAN_PASSWORD = "remote-test-pw-42"
# Generous deadlines: several Chromiums, WebRTC and the model share 2 cores with training and other test runs here. A test
# that works finishes long before them; they only bound how long a broken one hangs.
UI_TIMEOUT_MS = 120_000
NAVIGATION_TIMEOUT_MS = 300_000


@dataclass
class RunningApp:
    url: str
    settings: Settings  # as the app process sees them (same database)
    log_path: Path


@pytest.fixture
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (/usr/bin/chromium)")
    return CHROMIUM


@pytest.fixture
def model_env(tmp_path: Path) -> dict[str, str]:
    """FER_MODEL_PATH for the app process: unset when the shipped model exists, else the anchor with its sidecar.
    Without either the app still starts (the link checks need no model); the streaming tests skip on ../shared."""
    from fer.classifier import DEFAULT_MODEL_PATH

    if DEFAULT_MODEL_PATH.is_file() and DEFAULT_MODEL_PATH.with_suffix(".json").is_file():
        return {}
    try:
        path = model_for_tests(SHARED_DIR / "anchors", tmp_path / "model")
    except FileNotFoundError:
        return {}
    return {"FER_MODEL_PATH": str(path)} if path else {}


@pytest.fixture
def remote_analysis() -> str:
    """REMOTE_ANALYSIS for the app process: these tests stream the camera to the server (browser mode:
    tests/e2e/test_browser_remote.py overrides this fixture)."""
    return "server"


@pytest.fixture
def video_relay() -> str:
    """REMOTE_VIDEO_RELAY for the app process: on, so the Sessions page offers the relay; each session still relays
    only when the clinician ticks it (the first test does, the three-patient test's sessions do not)."""
    return "on"


@pytest.fixture
def app_server(tmp_path: Path, database_url: str, model_env: dict[str, str], chromium_path,
               remote_analysis: str, video_relay: str) -> Iterator[RunningApp]:
    """`streamlit run streamlit_app.py` on a free port against a fresh database; stopped at the end."""
    settings_env = {
        "DATABASE_URL": database_url,
        "PSYA_DATA_DIR": str(tmp_path / "data"),
        "ICE_SERVERS": "[]",
        "REMOTE_ANALYSIS_FPS": "4",
        "REMOTE_ANALYSIS": remote_analysis,
        "REMOTE_VIDEO_RELAY": video_relay,
        "COOKIE_KEY": uuid.uuid4().hex,
        **model_env,
    }
    app = AppProcess.start(settings_env, tmp_path, timeout=180)
    try:
        settings = Settings.load(environ={k: v for k, v in app.env.items() if k in _SETTING_NAMES},
                                 secrets_file=tmp_path / "no-secrets.toml")
        yield RunningApp(app.url, settings, app.log_path)
    finally:
        app.stop()


_SETTING_NAMES = {"DATABASE_URL", "PSYA_DATA_DIR", "PUBLIC_BASE_URL", "ICE_SERVERS", "REMOTE_ANALYSIS_FPS", "REMOTE_ANALYSIS",
                  "REMOTE_VIDEO_RELAY", "FER_MODEL_PATH", "COOKIE_KEY"}


@pytest.fixture
def app_store(app_server: RunningApp):
    """The test's own connection to the app's database (system actor)."""
    from store import open_store

    store = open_store(app_server.settings)
    yield store
    store.close()


@pytest.fixture
def app_clinician(app_store):
    """The first (admin) clinician of the fresh database, made the way the app's first-run form makes it."""
    from app import auth

    return auth.create_first_admin(app_store, CLINICIAN_USERNAME, "Dr Remote", CLINICIAN_PASSWORD, CLINICIAN_PASSWORD)


@pytest.fixture
def app_clinician_store(app_store, app_clinician):
    from store.api import Actor

    return app_store.as_actor(Actor.for_clinician(app_clinician))


@pytest.fixture(scope="module")
def playwright_instance():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


def start_remote_session(clinician_store, name: str) -> RemoteJoin:
    patient = clinician_store.create_patient(NewPatient(full_name=name))
    clinician_store.record_consent(patient.id, True, date.today(), "facial analysis during remote sessions")
    return clinician_store.start_remote_session(patient.id)


def launch_chromium(playwright, video: FaceVideo):
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        args=CHROMIUM_ARGS + [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video.path}",
        ],
    )


def join_as_patient(browser, link: str):
    """Open the join link in a fresh browser context, agree, start the camera. Returns the page."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)  # a loaded 2-core machine starting several Chromiums is slow
    page = context.new_page()
    page.goto(link)
    wait_until_idle(page)
    page.get_by_text(CONSENT_LABEL).click()
    page.frame_locator(WEBRTC_IFRAME).get_by_role("button", name="Start camera").click(timeout=UI_TIMEOUT_MS)
    return page


def wait_for_readings(store, session_id: uuid.UUID, at_least: int, timeout: float = 90.0) -> list:
    deadline = time.monotonic() + timeout
    readings: list = []
    while time.monotonic() < deadline:
        readings = store.readings_since(session_id).readings
        if len(readings) >= at_least:
            return readings
        time.sleep(0.05)
    return readings


class ReadingWatcher:
    """Polls several sessions from a thread, from before the first patient starts, noting when each got its first
    reading (so joining the next patient's browser does not count in the previous one's time)."""

    def __init__(self, store, session_ids: list[uuid.UUID]) -> None:
        self._store = store
        self.readings: dict[uuid.UUID, list] = {s: [] for s in session_ids}
        self.first_seen: dict[uuid.UUID, float] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for session_id in list(self.readings):
                found = self._store.readings_since(session_id).readings
                with self._lock:
                    self.readings[session_id] = found
                    if found and session_id not in self.first_seen:
                        self.first_seen[session_id] = time.monotonic()
            time.sleep(0.05)

    def wait(self, at_least: int, timeout: float) -> dict[uuid.UUID, list]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if all(len(r) >= at_least for r in self.readings.values()):
                    break
            time.sleep(0.1)
        with self._lock:
            return dict(self.readings)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.fixture
def face_images(fer2013_dir: Path) -> list[Path]:
    return pick_face_images(fer2013_dir, classes=("happy", "neutral", "surprise"), per_class=2)


def wait_until_idle(page, settle_ms: int = 500) -> None:
    """Wait until the Streamlit script has finished running (and stays finished briefly): a form submitted while a
    rerun is in flight (e.g. the one a component's first value triggers) can be lost."""
    idle = '[data-testid="stApp"][data-test-script-state="notRunning"]'
    page.locator(idle).wait_for(timeout=UI_TIMEOUT_MS)
    page.wait_for_timeout(settle_ms)
    page.locator(idle).wait_for(timeout=UI_TIMEOUT_MS)


def log_in(page, app_url: str) -> None:
    """Signs the clinician in and waits until the browser holds the login cookie: a later reload (`ui_goto`) starts a
    new Streamlit session that is signed in only through that cookie, and the cookie component writes it a moment
    after the login (longer on busy cores)."""
    page.goto(app_url)
    wait_until_idle(page)
    page.get_by_role("textbox", name="Username").fill(CLINICIAN_USERNAME)
    page.get_by_role("textbox", name="Password").fill(CLINICIAN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("button", name="Log out").wait_for(timeout=UI_TIMEOUT_MS)
    wait_for_login_cookie(page, timeout=UI_TIMEOUT_MS / 1000)


def start_remote_session_in_ui(page, app_url: str, relay_video: bool = False) -> str:
    """On the Sessions page: choose remote mode (ticking the video relay when `relay_video`), start; the live dashboard
    then shows the join link. Returns it."""
    # Navigate inside the app (no reload): a reload starts a new Streamlit session that must first restore the login
    # from the cookie, and until then only the login page exists.
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    # A click that lands while the login's own reruns are in flight can be dropped (seen once under a CPU burner):
    # wait for the app to be idle, and click again while the Sessions page has not appeared, up to the UI timeout.
    wait_until_idle(page)
    deadline = time.monotonic() + UI_TIMEOUT_MS / 1000
    while True:
        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Sessions", exact=True).click()
        try:
            page.get_by_role("heading", name="Sessions").first.wait_for(timeout=30_000)
            break
        except PlaywrightTimeoutError:
            if time.monotonic() > deadline:
                raise
    wait_until_idle(page)
    page.get_by_text("Remote (patient's browser)").click()
    wait_until_idle(page)
    if relay_video:
        page.get_by_text(RELAY_CHOICE_LABEL).click()
        page.get_by_role("checkbox", name=RELAY_CHOICE_LABEL).wait_for(timeout=UI_TIMEOUT_MS)
        wait_until_idle(page)
        assert page.get_by_role("checkbox", name=RELAY_CHOICE_LABEL).is_checked()
    page.get_by_role("button", name="Start remote session").click()
    code = page.locator('[data-testid="stCode"]').filter(has_text="/join?token=")
    code.wait_for(timeout=UI_TIMEOUT_MS)
    link = code.inner_text().strip()
    assert re.fullmatch(re.escape(app_url) + r"/join\?token=[\w%-]+", link), link
    return link


def dashboard_reading_count(page) -> int:
    metric = page.get_by_test_id("stMetric").filter(has_text="Readings").get_by_test_id("stMetricValue")
    # While the dashboard fragment reruns, Streamlit briefly keeps the previous run's elements beside the new ones:
    # the newest is the last.
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    try:
        text = metric.last.inner_text(timeout=5_000).replace(",", "")
    except PlaywrightTimeoutError:  # not drawn yet (a busy machine): the callers wait with their own deadline
        return 0
    return int(text) if text.isdigit() else 0


def wait_for_playing_video(page, timeout: float = 180.0) -> None:
    """Some streamlit-webrtc iframe on `page` shows a <video> that has decoded frames and is advancing."""
    deadline = time.monotonic() + timeout
    script = "() => { const v = document.querySelector('video'); return !!v && v.videoWidth > 0 && v.currentTime > 0; }"
    while time.monotonic() < deadline:
        for frame in page.frames:
            if "streamlit_webrtc" in frame.url:
                try:
                    if frame.evaluate(script):
                        return
                except Exception:  # the iframe may be re-rendering; look again
                    pass
        page.wait_for_timeout(250)
    raise AssertionError("no playing relayed video on the clinician's page")


def test_a_patient_joins_by_link_and_readings_reach_the_clinicians_dashboard(
    app_server, app_store, app_clinician_store, face_images, tmp_path, playwright_instance
):
    video = make_face_video(face_images, tmp_path / "patient.y4m")
    patient = app_clinician_store.create_patient(NewPatient(full_name="Remote Patient One"))
    app_clinician_store.record_consent(patient.id, True, date.today(), "facial analysis during remote sessions")

    browser = launch_chromium(playwright_instance, video)
    clinician_page = None
    try:
        clinician_context = browser.new_context()
        clinician_context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
        clinician_page = clinician_context.new_page()
        log_in(clinician_page, app_server.url)
        link = start_remote_session_in_ui(clinician_page, app_server.url, relay_video=True)  # the relay, explicitly
        session = app_clinician_store.list_sessions(patient_id=patient.id, status="live")[0]
        assert session.mode == "remote"

        page = join_as_patient(browser, link)
        assert "Your clinician sees your video" in page.inner_text("body")  # told before the camera starts
        started = time.monotonic()
        first = wait_for_readings(app_clinician_store, session.id, 1, timeout=180)
        time_to_first = time.monotonic() - started
        assert first, f"no reading arrived within 180 s; app log:\n{app_server.log_path.read_text()[-4000:]}"
        print(f"\ntime from 'Start camera' to the first stored reading: {time_to_first:.2f} s")

        readings = wait_for_readings(app_clinician_store, session.id, 8, timeout=180)
        assert len(readings) >= 8
        assert all(r.session_id == session.id and r.source == "remote" for r in readings)
        page.get_by_text(re.compile(r"Connected: \d+ frames analysed")).wait_for(timeout=UI_TIMEOUT_MS)
        # The patient does not see the emotion estimates (SHOW_EMOTIONS_TO_PATIENT is off).
        assert "Current expression" not in page.inner_text("body")
        page.screenshot(path=str(tmp_path / "patient.png"), full_page=True)

        # The clinician's live dashboard (the page the session started on) counts the readings as they arrive.
        deadline = time.monotonic() + 30
        while dashboard_reading_count(clinician_page) < len(readings) and time.monotonic() < deadline:
            clinician_page.wait_for_timeout(250)
        assert dashboard_reading_count(clinician_page) >= len(readings)
        # Beside the chart, the clinician who chose the relay sees the patient's camera, relayed by the server (a
        # playing <video>).
        clinician_page.get_by_text(re.compile("relayed to this dashboard \\(you chose the relay")).first.wait_for(
            timeout=UI_TIMEOUT_MS)
        wait_for_playing_video(clinician_page)
        clinician_page.screenshot(path=str(tmp_path / "clinician-dashboard.png"), full_page=True)

        # The clinician ends the session: the patient's page says so, and no more readings are accepted.
        ended = app_clinician_store.end_session(session.id)
        page.get_by_text(re.compile("session has ended", re.I)).first.wait_for(timeout=UI_TIMEOUT_MS)
        # The patient's link itself is refused now (what the app's writer gets for any later reading)...
        token = parse_qs(urlparse(link).query)["token"][0]
        late = Reading(session_id=session.id, captured_at=ended.ended_at + timedelta(seconds=1),
                       probabilities=(0, 0, 0, 1, 0, 0, 0), source="remote", box=(1, 1, 10, 10))
        with pytest.raises((InvalidToken, SessionNotLive)):
            app_store.insert_remote_readings(token, [late])
        # ...and nothing stored for the session was captured after its end (stop means stop),
        # however long the patient's camera kept sending.
        stored = app_clinician_store.readings_since(session.id).readings
        assert stored and all(r.captured_at <= ended.ended_at for r in stored)
        assert late.id not in {r.id for r in stored}
    except Exception:
        if clinician_page is not None:  # what the clinician saw, for the failure report
            clinician_page.screenshot(path=str(tmp_path / "clinician-at-failure.png"), full_page=True)
        raise
    finally:
        browser.close()


def test_three_patients_at_once_each_reading_lands_in_its_own_session(
    app_server, app_clinician_store, face_images, tmp_path, playwright_instance
):
    patients = []
    for index, face_box in enumerate(PATIENT_FACE_BOXES):
        video = make_face_video(face_images, tmp_path / f"patient-{index}.y4m", face_box=face_box)
        join = start_remote_session(app_clinician_store, f"Remote Patient {index}")
        patients.append((video, join))

    browsers = [launch_chromium(playwright_instance, video) for video, _ in patients]
    session_ids = [join.session.id for _, join in patients]
    watcher = ReadingWatcher(app_clinician_store, session_ids)
    started: dict[uuid.UUID, float] = {}
    patient_pages = []
    clinician_page = None
    try:
        # The clinician signs in first, as in a clinic (and while the cores are not yet busy with three streams).
        clinician_page = browsers[0].new_context().new_page()
        clinician_page.context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
        log_in(clinician_page, app_server.url)
        for browser, (_, join) in zip(browsers, patients):
            patient_pages.append(join_as_patient(browser, join_link(app_server.settings, join.token)))
            started[join.session.id] = time.monotonic()
        per_session = watcher.wait(at_least=5, timeout=300)  # generous: three Chromiums and WebRTC on 2 busy cores
        # These sessions were started without the relay (the default, though REMOTE_VIDEO_RELAY=on allows it): each
        # patient was told so, and the clinician's dashboard of a streaming session says so and plays no video.
        assert all("not shown to your clinician" in p.inner_text("body") for p in patient_pages)
        ui_goto(clinician_page, f"{app_server.url}/live?session={session_ids[0]}")
        clinician_page.get_by_text(re.compile("no video is relayed to this dashboard")).first.wait_for(timeout=UI_TIMEOUT_MS)
        deadline = time.monotonic() + 180  # generous: three Chromiums and WebRTC on 2 busy cores
        while dashboard_reading_count(clinician_page) == 0 and time.monotonic() < deadline:
            clinician_page.wait_for_timeout(250)
        assert dashboard_reading_count(clinician_page) > 0  # the server analyses the video it shows no one
        # The page draws the relay in the same run as this line when the session has one (and reruns itself should
        # that change): the line is on screen, so there is none to wait for.
        assert clinician_page.locator(WEBRTC_IFRAME).count() == 0 and clinician_page.locator("video").count() == 0
        assert not any("streamlit_webrtc" in frame.url for frame in clinician_page.frames)
    except Exception:
        for name, page in [("clinician", clinician_page)] + [(f"patient-{i}", p) for i, p in enumerate(patient_pages)]:
            if page is not None:  # what each of them saw, for the failure report
                page.screenshot(path=str(tmp_path / f"{name}-at-failure.png"), full_page=True)
        raise
    finally:
        watcher.stop()
        for browser in browsers:
            browser.close()
    for index, session_id in enumerate(session_ids):
        waited = watcher.first_seen.get(session_id, float("nan")) - started[session_id]
        print(f"\npatient {index}: first reading {waited:.2f} s after 'Start camera'; {len(per_session[session_id])} readings")

    all_ids = [r.id for readings in per_session.values() for r in readings]
    assert len(all_ids) == len(set(all_ids))  # no reading stored twice
    for video, join in patients:
        readings = per_session[join.session.id]
        assert len(readings) >= 5, f"session {join.session.id} got {len(readings)} readings"
        x, y, w, h = video.face_box
        for reading in readings:
            assert reading.session_id == join.session.id
            bx, by, bw, bh = reading.box
            centre_x = bx + bw / 2
            # The detected face must be the one this patient's camera showed, not another patient's.
            assert x <= centre_x <= x + w, f"reading {reading.id} box {reading.box} is not inside {video.face_box}"


def test_invalid_or_ended_links_show_a_message_and_no_camera(app_server, app_clinician_store, tmp_path, playwright_instance, chromium_path):
    ended = start_remote_session(app_clinician_store, "Ended Session Patient")
    app_clinician_store.end_session(ended.session.id)
    browser = playwright_instance.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    try:
        page = browser.new_page()
        for link in (
            f"{app_server.url}/join?token=not-a-valid-token",
            f"{app_server.url}/join",
            join_link(app_server.settings, ended.token),
        ):
            page.goto(link)
            page.get_by_text(INVALID_LINK_MESSAGE[:40]).wait_for(timeout=UI_TIMEOUT_MS)
            assert page.locator(WEBRTC_IFRAME).count() == 0
            assert page.get_by_text(CONSENT_LABEL).count() == 0
    finally:
        browser.close()
