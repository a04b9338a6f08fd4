"""A separate agent process that writes readings the way a Pi device does: it authenticates with its id and key, waits
for the live session assigned to it, and inserts timestamped readings through the store as that device.

    python -m tests.e2e.device_writer --device-id ID --count 40 --interval 0.25   (key in PSYA_DEVICE_KEY)

The database comes from the usual settings (DATABASE_URL / PSYA_DATA_DIR). Prints one line per batch written:
"wrote N total M".
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from datetime import datetime, timezone

from app.demo import synthetic_probabilities
from settings import Settings
from store import open_store
from store.api import Actor
from store.models import Reading


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device-id", type=uuid.UUID, required=True)
    parser.add_argument("--count", type=int, default=40, help="readings to write in all")
    parser.add_argument("--batch", type=int, default=1, help="readings per insert")
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between inserts")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for a live session")
    args = parser.parse_args(argv)

    system = open_store(Settings.load())
    device = system.authenticate_device(args.device_id, os.environ["PSYA_DEVICE_KEY"])
    store = system.as_actor(Actor.for_device(device.id))
    deadline = time.monotonic() + args.wait
    session = None
    while session is None:
        store.heartbeat()
        session = store.live_session_for_device()
        if session is None:
            if time.monotonic() > deadline:
                print("no live session for this device", file=sys.stderr)
                return 1
            time.sleep(0.2)
    probabilities = synthetic_probabilities(args.count, 1.0, [0, -1, 0, 1.0, 0, 0, 1.5], seed=7)
    written = 0
    while written < args.count:
        size = min(args.batch, args.count - written)
        now = datetime.now(timezone.utc)
        batch = [Reading(session.id, now, tuple(float(p) for p in probabilities[written + i]), "pi", box=(200, 100, 160, 160)) for i in range(size)]
        written += store.insert_readings(batch)
        store.heartbeat()
        print(f"wrote {size} total {written}", flush=True)
        time.sleep(args.interval)
    system.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
