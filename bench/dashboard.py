"""Insert-to-chart latency of the live dashboard: a reading is inserted through the store (as the room's Pi device),
and the clock stops when Debian Chromium's live chart draws it. The real app (`streamlit run`) runs on a fresh embedded
PostgreSQL in a temporary directory; the dashboard polls `readings_since(cursor)` once a second (goal: <= 1.5 s).

    python -m bench dashboard
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path

from bench.table import Section

SAMPLES = 12
GOAL_S = 1.5
PASSWORD = "bench-password-1"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def run(samples: int = SAMPLES) -> Section:
    from tests.e2e import clinic_harness as ui

    section = Section("Live dashboard: insert-to-chart latency", ["samples", "median s", "p95 s", "max s", "min s", "goal s"])
    if not ui.CHROMIUM.exists():
        section.skipped = "Debian chromium (/usr/bin/chromium) is not installed"
        return section

    from playwright.sync_api import sync_playwright

    from app import auth
    from app.demo import synthetic_probabilities
    from settings import Settings
    from store import open_store
    from store.api import Actor
    from store.embedded import EmbeddedPostgres
    from store.models import NewPatient, Reading

    with tempfile.TemporaryDirectory(prefix="psya-bench-dashboard-") as tmp:
        workdir = Path(tmp)
        embedded = EmbeddedPostgres(workdir / "data")
        database_url = embedded.ensure_running(migrate=True)
        system = open_store(Settings(database_url=database_url))
        app = None
        try:
            clinician = auth.create_first_admin(system, "bench", "Dr Bench", PASSWORD, PASSWORD)
            store = system.as_actor(Actor.for_clinician(clinician))
            patient = store.create_patient(NewPatient("Bench Patient"))
            store.record_consent(patient.id, True, date.today(), "benchmark")
            device = store.register_device("pi-bench", "Bench room").device
            session = store.start_session(patient.id, "in_person", device_id=device.id)
            device_store = system.as_actor(Actor.for_device(device.id))
            probabilities = synthetic_probabilities(samples, 1.0, [0, -1, 0, 1, 0, 0, 1.5], seed=3)

            app = ui.AppProcess.start({"DATABASE_URL": database_url, "PSYA_DATA_DIR": str(workdir / "app")}, workdir)
            latencies: list[float] = []
            with sync_playwright() as playwright:
                browser = ui.launch_chromium(playwright)
                page = browser.new_page(viewport={"width": 1400, "height": 1200})
                ui.log_in(page, app.url, "bench", PASSWORD)
                ui.goto(page, f"{app.url}/live?session={session.id}")
                try:
                    page.get_by_text("Waiting for the first reading").wait_for(timeout=30_000)
                except Exception:
                    failure = ui.PROJECT_ROOT / "artifacts" / "screenshots" / "bench-dashboard-failure.png"
                    failure.parent.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(failure))
                    print(f"the live dashboard did not open ({page.url}); screenshot: {failure}\n{app.log_tail()}")
                    raise
                rng = random.Random(5)
                for index in range(samples):
                    # A random pause lands the insert at a random point of the dashboard's one-second polling cycle.
                    time.sleep(rng.uniform(0.2, 1.2))
                    reading = Reading(session.id, datetime.now(timezone.utc), tuple(float(p) for p in probabilities[index]), "pi",
                                      box=(200, 100, 160, 160))  # a usable face: box-less readings are filtered out
                    started = time.perf_counter()
                    device_store.insert_readings([reading])
                    try:
                        ui.wait_until(lambda: ui.chart_points(page) >= index + 1, 10, 0.01, f"reading {index + 1} on the chart")
                    except TimeoutError:
                        failure = ui.PROJECT_ROOT / "artifacts" / "screenshots" / "bench-dashboard-failure.png"
                        failure.parent.mkdir(parents=True, exist_ok=True)
                        page.screenshot(path=str(failure), full_page=True)
                        print(f"reading {index + 1} not drawn; screenshot: {failure}\n{app.log_tail()}")
                        raise
                    latencies.append(time.perf_counter() - started)
                browser.close()
        finally:
            if app is not None:
                app.stop()
            system.close()
            embedded.stop()

    section.add(len(latencies), statistics.median(latencies), _percentile(latencies, 0.95), max(latencies), min(latencies), GOAL_S)
    section.notes.append("one reading per insert, inserted as the device through the store; timed until Chromium's Plotly chart draws it")
    section.notes.append("the dashboard refreshes once a second (st.fragment run_every=1 s) and reads only rows after its cursor")
    section.notes.append(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (browser, app and database share them)")
    return section


if __name__ == "__main__":
    print(run().render())
