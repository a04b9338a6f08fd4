"""Browser analysis (REMOTE_ANALYSIS=browser) against server analysis: what each costs the server per patient, and what
the patient's browser spends per frame.

Rows:
- in headless Debian Chromium (the built bundle, LiteRT.js, one thread): one 640x480 camera frame through the browser
  pipeline (BlazeFace + margin crop + the model), split into detection and classification; the time to load the runtime
  and models; what the patient's browser downloads;
- the real app (`streamlit run`, embedded PostgreSQL) with one remote patient (a Chromium with a fake camera playing
  FER2013 faces), once per mode: the app process's CPU while the patient streams, minus the same process idle, over a
  fixed window; readings stored per second; and from it the patients a server with this many cores could take.

    python -m bench browser
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

from bench.table import Section

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = Path(os.environ.get("FER_SHARED_DIR", PROJECT_ROOT.parent / "shared"))
FRAMES = 40
WINDOW_S = 20.0
IDLE_S = 10.0
PASSWORD = "bench-password-1"
COMPONENT_IFRAME = 'iframe[title*="psya_browser_analysis"]'
WEBRTC_IFRAME = 'iframe[title^="streamlit_webrtc"]'
CONSENT_LABEL = "I have read the above and agree to facial analysis"


def _frames() -> list[np.ndarray]:
    import cv2

    from tests.e2e.fixtures_video import compose_frame, pick_face_images

    images = pick_face_images(SHARED_DIR / "datasets" / "fer2013", per_class=2)
    return [np.repeat(compose_frame(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE), (200, 120, 240, 240))[:, :, None], 3, axis=2)
            for p in images]


def _download_mb() -> float:
    from app.browser_analysis import BUILD_DIR

    # What one browser fetches: one of the two wasm builds (+ its js), the bundle, and the two models.
    names = ["bundle.js", "index.html", "wasm/litert_wasm_internal.js", "wasm/litert_wasm_internal.wasm"]
    size = sum((BUILD_DIR / n).stat().st_size for n in names)
    size += sum(p.stat().st_size for p in (BUILD_DIR / "models").glob("*.tflite"))
    return size / 1e6


def _in_page(section: Section, frames: list[np.ndarray]) -> float:
    from playwright.sync_api import sync_playwright

    from settings import Settings
    from tests.e2e.browser_bundle import BundleServer, analyze_in_browser, launch, load_analyzer, open_bundle_page

    server = BundleServer()
    try:
        with sync_playwright() as playwright:
            browser = launch(playwright)
            try:
                page = open_bundle_page(browser, server)
                started = time.perf_counter()
                load_analyzer(page, Settings.load())
                load_s = time.perf_counter() - started
                analyze_in_browser(page, frames[:2])  # warm-up (first XNNPACK runs)
                results = analyze_in_browser(page, (frames * (FRAMES // len(frames) + 1))[:FRAMES])
            finally:
                browser.close()
    finally:
        server.close()
    total = [r["ms"] for r in results]
    section.add("browser: one 640x480 frame, detect + classify (median wall, headless Chromium, 1 thread)", "browser",
                statistics.median(total), "ms")
    section.add("browser: the same, 95th percentile", "browser", float(np.percentile(total, 95)), "ms")
    section.add("browser: BlazeFace detection per frame (median)", "browser", statistics.median(r["detectionMs"] for r in results), "ms")
    section.add("browser: classification of the face (crop, preprocessing, int8 model; median)", "browser",
                statistics.median(r["classificationMs"] for r in results), "ms")
    section.add("browser: load LiteRT.js wasm + both models (first time)", "browser", load_s * 1000, "ms")
    section.add("browser: download (runtime wasm + js + bundle + models, uncompressed)", "browser", _download_mb(), "MB")
    return statistics.median(total)


def _process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _serve_one_patient(mode: str, video: Path, workdir: Path, database_url: str, clinician_store) -> dict[str, float]:
    """One app process in `mode`, one patient streaming: CPU of the app process (busy minus idle) and readings/s."""
    from playwright.sync_api import sync_playwright

    from app.remote import join_link
    from settings import Settings
    from store.models import NewPatient
    from tests.e2e import clinic_harness as ui

    patient = clinician_store.create_patient(NewPatient(f"Bench {mode} patient"))
    clinician_store.record_consent(patient.id, True, date.today(), "benchmark")
    join = clinician_store.start_remote_session(patient.id)
    app = ui.AppProcess.start({"DATABASE_URL": database_url, "PSYA_DATA_DIR": str(workdir / f"app-{mode}"),
                               "REMOTE_ANALYSIS": mode, "ICE_SERVERS": "[]", "REMOTE_ANALYSIS_FPS": "4"}, workdir / mode)
    try:
        link = join_link(Settings(public_base_url=app.url), join.token)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(ui.CHROMIUM), args=ui.CHROMIUM_ARGS + [
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={video}"])
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                page.goto(link)
                page.get_by_text(CONSENT_LABEL).click()
                iframe = COMPONENT_IFRAME if mode == "browser" else WEBRTC_IFRAME
                page.frame_locator(iframe).get_by_role("button", name="Start camera").click(timeout=120_000)
                ui.wait_until(lambda: clinician_store.readings_since(join.session.id).readings, 120, 0.2, "a first reading")
                time.sleep(3)  # past the start-up
                idle_cpu = None
                before, started = _process_cpu_s(app.process.pid), time.monotonic()
                count_before = len(clinician_store.readings_since(join.session.id).readings)
                time.sleep(WINDOW_S)
                busy = (_process_cpu_s(app.process.pid) - before) / (time.monotonic() - started)
                stored = (len(clinician_store.readings_since(join.session.id).readings) - count_before) / WINDOW_S
            finally:
                browser.close()
        # The same process with nobody connected: its own background cost, subtracted from the busy window.
        time.sleep(3)
        before, started = _process_cpu_s(app.process.pid), time.monotonic()
        time.sleep(IDLE_S)
        idle_cpu = (_process_cpu_s(app.process.pid) - before) / (time.monotonic() - started)
    finally:
        app.stop()
    return {"per_patient_pct": max(0.0, busy - idle_cpu) * 100, "busy_pct": busy * 100, "idle_pct": idle_cpu * 100,
            "readings_per_s": stored}


def run() -> Section:
    section = Section("Remote sessions: browser analysis vs server analysis", ["measure", "mode", "value", "unit"])
    from app.browser_analysis import build_problem
    from tests.e2e.clinic_harness import CHROMIUM

    if not CHROMIUM.exists():
        section.skipped = "Debian chromium (/usr/bin/chromium) is not installed"
        return section
    if build_problem():
        section.skipped = build_problem()
        return section
    if not (SHARED_DIR / "datasets" / "fer2013").is_dir():
        section.skipped = f"FER2013 not found under {SHARED_DIR}"
        return section
    frames = _frames()
    browser_ms = _in_page(section, frames)

    from app import auth
    from settings import Settings
    from store import open_store
    from store.api import Actor
    from store.embedded import EmbeddedPostgres
    from tests.e2e.fixtures_video import make_face_video, pick_face_images

    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="psya-bench-browser-") as tmp:
        workdir = Path(tmp)
        video = make_face_video(pick_face_images(SHARED_DIR / "datasets" / "fer2013", per_class=2), workdir / "camera.y4m",
                                fps=15).path
        embedded = EmbeddedPostgres(workdir / "data")
        database_url = embedded.ensure_running(migrate=True)
        system = open_store(Settings(database_url=database_url))
        try:
            clinician = auth.create_first_admin(system, "bench", "Dr Bench", PASSWORD, PASSWORD)
            store = system.as_actor(Actor.for_clinician(clinician))
            results = {mode: _serve_one_patient(mode, video, workdir, database_url, store) for mode in ("browser", "server")}
        finally:
            system.close()
            embedded.stop()
    for mode, result in results.items():
        section.add("server: app process CPU with one patient streaming", mode, result["busy_pct"], "% of one core")
        section.add("server: the same process idle (subtracted)", mode, result["idle_pct"], "% of one core")
        section.add("server: CPU per patient", mode, result["per_patient_pct"], "% of one core")
        section.add("server: readings stored per second", mode, result["readings_per_s"], "readings/s")
        per_patient = max(result["per_patient_pct"], 0.1)
        section.add(f"patients per {cores}-core server (CPU only, nothing else running)", mode, cores * 100.0 / per_patient,
                    "patients")
    section.notes.append(f"browser per-frame time {browser_ms:.1f} ms at 4 fps is {browser_ms * 0.4:.0f}% of one core of "
                         "the patient's device (headless Chromium on this machine)")
    section.notes.append(f"load average at the end: {os.getloadavg()[0]:.1f} on {cores} CPUs (other work shares them: "
                         "absolute times are inflated accordingly; compare the two modes within one run)")
    section.notes.append(f"{WINDOW_S:g} s windows; camera: FER2013 faces at 15 fps (server mode asks for <= 15 fps); "
                         "Chromium, the app and PostgreSQL share this machine's cores (and a training job may run)")
    starved = results["server"]["readings_per_s"] < 0.8 * 4
    if starved:
        section.notes.append(f"server mode stored only {results['server']['readings_per_s']:.1f} readings/s of the 4 targeted: "
                             "the server's analysis was CPU-starved on this machine, so its CPU per patient is a low estimate "
                             "(bench remote's per-frame numbers give the full cost)")
    section.notes.append("browser mode's server cost is one rerun of the join page's component fragment and one store insert per batch (about once a "
                         "second); in server mode it is WebRTC decode + analysis at 4 fps + encode of the self-view")
    return section


if __name__ == "__main__":
    print(run().render())
