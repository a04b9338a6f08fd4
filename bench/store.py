"""Store benchmark on a real PostgreSQL (a throw-away embedded server): how fast readings go in, and how long the
dashboard's "readings since" poll and the review page's aggregate take over a one-hour session (3,600 readings, 1/s).

Writes go through the public Store API as a device actor, so the numbers include validation, JSON encoding, the role and
claims switch, row-level security, the idempotency check and the per-session cursor lock: what the Pi agent pays.
"""

from __future__ import annotations

import secrets
import shutil
import statistics
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta

from bench.table import Section

SESSION_READINGS = 3_600  # one hour at one reading per second
INSERT_GOAL_PER_S = 2_000
REPEATS = 5


def _median_ms(action: Callable[[], object], repeats: int = REPEATS) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def _readings(session_id, count: int, start: datetime):
    from store.models import Reading

    probabilities = (0.05, 0.01, 0.04, 0.6, 0.1, 0.1, 0.1)
    # 50 ms apart from the session's start: the database refuses readings from the future (bounded reading times)
    return [Reading(session_id=session_id, captured_at=start + timedelta(milliseconds=50 * i), probabilities=probabilities,
                    source="pi", box=(100, 80, 160, 160)) for i in range(count)]


def run() -> Section:
    import tempfile
    from pathlib import Path

    from settings import Settings
    from store import open_store
    from store.api import Actor
    from store.embedded import EmbeddedPostgres
    from store.models import NewPatient

    section = Section("Store: real PostgreSQL (embedded), through the Store API",
                      ["operation", "rows", "median ms", "rows/s", "goal"])
    data_dir = Path(tempfile.mkdtemp(prefix="psya-bench-store-"))
    system = None
    try:
        system = open_store(Settings(data_dir=data_dir))
        clinician = system.create_clinician(f"bench_{secrets.token_hex(3)}", "Bench", "$2b$04$bench", "clinician")
        store = system.as_actor(Actor.for_clinician(clinician))

        def new_session():
            patient = store.create_patient(NewPatient(full_name=f"Bench {secrets.token_hex(3)}"))
            store.record_consent(patient.id, True, date.today(), "benchmark")
            registration = store.register_device(f"bench-{secrets.token_hex(3)}", "bench")
            session = store.start_session(patient.id, "in_person", registration.device.id)
            return session, system.as_actor(Actor.for_device(registration.device.id))

        for batch_size in (SESSION_READINGS, 100, 10):
            rates, times = [], []
            for _ in range(3 if batch_size == SESSION_READINGS else 1):
                session, device = new_session()
                rows = _readings(session.id, SESSION_READINGS, session.started_at)
                t0 = time.perf_counter()
                for i in range(0, len(rows), batch_size):
                    device.insert_readings(rows[i:i + batch_size])
                elapsed = time.perf_counter() - t0
                rates.append(len(rows) / elapsed)
                times.append(elapsed * 1000 / (len(rows) / batch_size))
            rate = statistics.median(rates)
            section.add(f"insert_readings, batches of {batch_size} (device function)", SESSION_READINGS,
                        statistics.median(times), round(rate), f">= {INSERT_GOAL_PER_S}/s " +
                        ("ok" if rate >= INSERT_GOAL_PER_S else "below"))

        session, device = new_session()
        rows = _readings(session.id, SESSION_READINGS, session.started_at)
        device.insert_readings(rows)
        retry_ms = _median_ms(lambda: device.insert_readings(rows), repeats=3)
        section.add("insert_readings, same 3600 again (all duplicates)", SESSION_READINGS, retry_ms,
                    round(SESSION_READINGS / (retry_ms / 1000)), "0 new rows")

        full = store.readings_since(session.id)
        assert len(full.readings) == SESSION_READINGS
        section.add("readings_since(cursor=0), whole hour", SESSION_READINGS,
                    _median_ms(lambda: store.readings_since(session.id)), "", "")
        tail_cursor = store.readings_since(session.id, limit=SESSION_READINGS - 4).cursor
        section.add("readings_since(cursor), last 4 (a dashboard poll)", 4,
                    _median_ms(lambda: store.readings_since(session.id, cursor=tail_cursor), repeats=20), "", "")
        section.add("readings_since(cursor), nothing new", 0,
                    _median_ms(lambda: store.readings_since(session.id, cursor=full.cursor), repeats=20), "", "")
        aggregate = store.session_aggregate(session.id)
        assert aggregate.readings == SESSION_READINGS
        section.add("session_aggregate, whole hour", SESSION_READINGS,
                    _median_ms(lambda: store.session_aggregate(session.id)), "", "")
        section.notes.append(f"median of {REPEATS} runs (polls: 20); every test session holds "
                             f"{SESSION_READINGS} readings; server: embedded PostgreSQL on 127.0.0.1, fresh data dir")
    finally:
        if system is not None:
            system.close()
        EmbeddedPostgres(data_dir).stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    return section


if __name__ == "__main__":
    print(run().render())
