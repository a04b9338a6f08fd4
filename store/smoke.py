"""End-to-end check of a configured database through the Store API: `python -m store.smoke`.

Uses `Settings.load()` (DATABASE_URL, or SUPABASE_URL + SUPABASE_KEY, or the embedded default), walks through every kind of
write and read the app and the agents make, and prints one line per step. This is the manual check against a real Supabase
project (docs/storage.md); it writes a clinician, patient, device and sessions named `smoke_<random>`, so point it at a
staging project or delete them afterwards.
"""

from __future__ import annotations

import secrets
import sys
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone

from store.api import Actor, Store
from store.errors import InvalidToken, NotFound, SessionNotLive, StoreError
from store.models import NewPatient, Reading

HAPPY = (0.05, 0.01, 0.04, 0.6, 0.1, 0.1, 0.1)


def run_checks(system: Store, say: Callable[[str], None] = print) -> bool:
    tag = f"smoke_{secrets.token_hex(4)}"
    failures = 0

    def step(name: str, check: Callable[[], object]) -> object:
        nonlocal failures
        try:
            result = check()
            say(f"PASS  {name}")
            return result
        except Exception as error:  # noqa: BLE001 - a smoke test reports every failure and goes on
            failures += 1
            say(f"FAIL  {name}: {type(error).__name__}: {error}")
            return None

    def expect(error_type: type[StoreError], action: Callable[[], object]) -> Callable[[], None]:
        def check() -> None:
            try:
                action()
            except error_type:
                return
            raise AssertionError(f"expected {error_type.__name__}")
        return check

    def equal(actual: object, expected: object) -> None:
        if actual != expected:
            raise AssertionError(f"{actual!r} != {expected!r}")

    def near_now(moment: object) -> None:
        # the database's clock against this machine's: a smoke check, so a minute either way (both are NTP-synced)
        if not isinstance(moment, datetime) or abs(moment - datetime.now(timezone.utc)) > timedelta(minutes=1):
            raise AssertionError(f"{moment!r} is not the database's clock of now")

    step("reach the database", system.ping)
    clinician = step("create a clinician (service role)", lambda: system.create_clinician(
        tag, "Smoke Test", "$2b$12$" + "x" * 53, "clinician"))
    other = step("create a second clinician", lambda: system.create_clinician(
        tag + "_b", "Smoke Other", "$2b$12$" + "x" * 53, "clinician"))
    if clinician is None or other is None:
        return False
    store = system.as_actor(Actor.for_clinician(clinician))
    outsider = system.as_actor(Actor.for_clinician(other))
    patient = step("create a patient", lambda: store.create_patient(NewPatient(full_name=f"{tag} patient")))
    if patient is None:
        return False
    step("another clinician cannot see the patient", expect(NotFound, lambda: outsider.get_patient(patient.id)))
    step("record consent", lambda: store.record_consent(patient.id, True, date.today(), "smoke test"))
    step("add a record entry", lambda: store.add_record_entry(patient.id, date.today(), "other", "smoke"))
    registration = step("register a device", lambda: store.register_device(f"{tag}-pi", "smoke room"))
    if registration is None:
        return False
    step("authenticate the device", lambda: system.authenticate_device(registration.device.id, registration.key))
    device = system.as_actor(Actor.for_device(registration.device.id))
    step("device heartbeat answers the database's clock", lambda: near_now(device.heartbeat()))

    def offset_is_stored() -> None:
        device.heartbeat(timedelta(milliseconds=-3400))  # the agent reports the offset it measured (pi_agent/clock.py)
        equal(next(d.clock_offset_ms for d in store.list_devices() if d.id == registration.device.id), -3400)

    step("device heartbeat stores the measured clock offset", offset_is_stored)
    session = step("start an in-person session", lambda: store.start_session(patient.id, "in_person",
                                                                             registration.device.id))
    if session is None:
        return False
    step("the device finds its live session", lambda: equal(device.live_session_for_device().id, session.id))
    start = datetime.now(timezone.utc)
    batch = [Reading(session.id, start + timedelta(milliseconds=250 * i), HAPPY, "pi", box=(1, 2, 3, 4))
             for i in range(20)]
    step("device inserts 20 readings", lambda: equal(device.insert_readings(batch), 20))
    step("the same batch again adds nothing", lambda: equal(device.insert_readings(batch), 0))
    step("readings_since returns them in order with ms times",
         lambda: equal([r.captured_at for r in store.readings_since(session.id).readings], [r.captured_at for r in batch]))
    step("session aggregate", lambda: equal(store.session_aggregate(session.id).readings, 20))
    step("annotate", lambda: store.add_annotation(session.id, start, "smoke"))
    ended = step("end the session", lambda: store.end_session(session.id))
    if ended is not None:
        step("a late reading captured before the end is still stored", lambda: equal(device.insert_readings(
            [Reading(session.id, ended.ended_at - timedelta(seconds=1), HAPPY, "pi")]), 1))
        step("a reading captured 1 s after the end is refused (stop means stop)", expect(
            SessionNotLive, lambda: device.insert_readings([Reading(session.id, ended.ended_at + timedelta(seconds=1),
                                                                    HAPPY, "pi")])))
    join = step("start a remote session", lambda: store.start_remote_session(patient.id, timedelta(minutes=10)))
    if join is not None:
        remote = system.as_actor(Actor("remote"))
        step("the join token opens it", lambda: equal(remote.session_for_token(join.token).id, join.session.id))
        step("remote readings through the token", lambda: equal(remote.insert_remote_readings(
            join.token, [Reading(join.session.id, start, HAPPY, "remote", id=uuid.uuid4())]), 1))
        step("a wrong token is refused", expect(InvalidToken, lambda: remote.session_for_token("w" * 43)))
        remote_end = step("end the remote session", lambda: store.end_session(join.session.id))
        step("its token no longer opens the session", expect(InvalidToken, lambda: remote.session_for_token(join.token)))
        if remote_end is not None:
            step("a late remote reading captured before the end is still stored", lambda: equal(
                remote.insert_remote_readings(join.token, [Reading(join.session.id, remote_end.ended_at, HAPPY,
                                                                   "remote")]), 1))
    step("audit log has entries", lambda: equal(bool(system.list_audit(limit=5)), True))
    say(f"{'all checks passed' if failures == 0 else f'{failures} check(s) FAILED'} (data tagged {tag})")
    return failures == 0


def main() -> int:
    from settings import Settings
    from store import open_store

    settings = Settings.load()
    print(f"backend: {settings.backend}")
    store = open_store(settings)
    try:
        return 0 if run_checks(store) else 1
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
