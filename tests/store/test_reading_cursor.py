"""The polling cursor under concurrent writers: a dashboard that polls `readings_since(cursor)` while several batches
commit at once must see every reading exactly once (a late-committing batch may never land below the cursor)."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta, timezone

from store.api import Actor
from store.models import Reading
from tests.store.conftest import HAPPY, World


def test_a_poller_sees_every_reading_once_while_writers_commit_concurrently(store_factory):
    world = World(store_factory())
    _, clinician_store = world.clinician()
    session = clinician_store.start_session(world.patient(clinician_store).id, "recorded_video")
    writers = [store_factory(clinician_store.actor) for _ in range(3)]
    written: list[uuid.UUID] = []
    lock = threading.Lock()
    done = threading.Event()

    def write(store) -> None:
        start = datetime.now(timezone.utc)
        for batch_number in range(30):
            batch = [Reading(session.id, start + timedelta(milliseconds=batch_number * 10 + i), HAPPY, "video")
                     for i in range(7)]
            store.insert_readings(batch)
            with lock:
                written.extend(r.id for r in batch)

    seen: list[uuid.UUID] = []

    def poll() -> None:
        cursor = 0
        while True:
            finished = done.is_set()  # read before polling, so the last poll happens after every commit
            page = clinician_store.readings_since(session.id, cursor=cursor)
            seen.extend(r.id for r in page.readings)
            cursor = page.cursor
            if finished:
                return

    threads = [threading.Thread(target=write, args=(store,)) for store in writers]
    poller = threading.Thread(target=poll)
    poller.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    done.set()
    poller.join(120)
    assert len(written) == 3 * 30 * 7
    assert len(seen) == len(set(seen)), "a reading was delivered twice"
    assert set(seen) == set(written), f"{len(set(written) - set(seen))} readings were skipped by the cursor"
