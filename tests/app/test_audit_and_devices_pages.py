"""The Audit page (readable names, repeated views collapsed, the hash chain's state) and the Devices page's revocation,
through the real app script on a real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta

import bcrypt
import jwt
import psycopg
import pytest

from app import audit as audit_service
from app import devices
from settings import Settings
from store.api import Actor
from store.errors import PermissionDenied, StoreError
from store.models import Device, DeviceRegistration
from tests.app.conftest import PASSWORD, log_in, open_page, page_text, visible_text
from tests.app.helpers import consenting_patient


def admin_app(new_app, system_store):
    password_hash = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    admin = system_store.create_clinician("chief", "Dr Chief", password_hash, "admin")
    at = log_in(new_app(), admin.username)
    assert not at.exception, at.exception
    return at, admin


def test_the_audit_page_names_people_and_patients_and_collapses_repeated_views(new_app, system_store, clinician,
                                                                                 clinician_store):
    patient = consenting_patient(clinician_store, "Lucía Fernández")
    for _ in range(3):
        clinician_store.get_patient(patient.id)
    at, _ = admin_app(new_app, system_store)
    at = open_page(at, "pages/audit.py")
    assert not at.exception, at.exception
    frame = at.dataframe[0].value
    views = frame[(frame["Action"] == "view") & (frame["Which"] == "Lucía Fernández")]
    assert list(views["Times"]) == [3]  # three views in a row: one line
    assert list(views["Who"]) == [f"{clinician.display_name} ({clinician.username})"]
    assert not frame["Which"].str.fullmatch(r"[0-9a-f-]{36}").any()  # no raw ids where a name is known


def test_the_audit_page_reports_a_broken_chain(new_app, system_store, clinician_store, database_url):
    consenting_patient(clinician_store, "Mateo Ruiz")
    with psycopg.connect(database_url, autocommit=True) as owner:
        owner.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_or_delete")
        owner.execute("UPDATE audit_log SET action = 'nothing' WHERE id = (SELECT min(id) FROM audit_log)")
        owner.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update_or_delete")
    at, _ = admin_app(new_app, system_store)
    at = open_page(at, "pages/audit.py")
    next(b for b in at.button if b.label == "Verify now").click().run()
    assert not at.exception, at.exception
    assert "audit chain BROKEN at position 1" in page_text(at)
    assert "audit chain BROKEN at position 1" in at.run().error[0].value.replace("\\", "")  # kept for the next load


def test_the_audit_page_shows_the_last_verification_and_walks_the_chain_only_when_asked(
        new_app, system_store, clinician_store, monkeypatch):
    consenting_patient(clinician_store, "Irene Sanz")
    walks = []
    real_verify = audit_service.verify_chain
    monkeypatch.setattr(audit_service, "verify_chain", lambda store: walks.append(1) or real_verify(store))
    at, admin = admin_app(new_app, system_store)
    at = open_page(at, "pages/audit.py")
    assert not at.exception, at.exception
    assert "has not been verified yet" in page_text(at) and walks == []  # loading the page walks nothing

    next(b for b in at.button if b.label == "Verify now").click().run()
    assert walks == [1]
    [shown] = at.success
    text = page_text(at)
    assert "audit chain intact:" in text and f"by Audit page ({admin.username})" in text and "Last verified 20" in text
    clinician_store.get_patient(clinician_store.list_patients()[0].id)  # one more audited event
    at = open_page(at, "pages/audit.py")
    assert walks == [1]  # the next load shows the recorded result
    assert "audit chain intact:" in page_text(at) and "rows appended since" in page_text(at)


def test_the_nightly_command_records_its_result_for_the_page(new_app, system_store, clinician_store, database_url,
                                                             app_env, capsys):
    from store import audit as chain_audit

    consenting_patient(clinician_store, "Olga Ruiz")
    assert chain_audit.main(["verify", "--database-url", database_url]) == 0
    assert "audit chain intact" in capsys.readouterr().out
    at, _ = admin_app(new_app, system_store)
    at = open_page(at, "pages/audit.py")
    assert "by python -m store.audit verify" in page_text(at) and "audit chain intact:" in page_text(at)


def test_collapse_keeps_runs_apart_when_something_happens_in_between(system_store, clinician_store, admin_store):
    patient = consenting_patient(clinician_store, "Nora Paz")
    clinician_store.get_patient(patient.id)
    clinician_store.update_patient(patient.id, notes="x")
    clinician_store.get_patient(patient.id)
    rows = audit_service.readable_audit(admin_store)
    assert [(r.action, r.count) for r in rows[:3]] == [("view", 1), ("update", 1), ("view", 1)]


def test_an_admin_revokes_a_device_on_the_devices_page(new_app, system_store, clinician_store):
    registration = clinician_store.register_device("pi-lost", "Room 4")
    at, _ = admin_app(new_app, system_store)
    at = open_page(at, "pages/devices.py")
    next(b for b in at.button if b.label == "Revoke").click().run()
    assert "Revoked pi-lost" in page_text(at)
    at.run()
    assert list(at.dataframe[0].value["Status"]) == ["revoked"]
    device = system_store.as_actor(Actor.for_device(registration.device.id))
    with pytest.raises(PermissionDenied):
        device.heartbeat()


def test_on_supabase_without_the_anon_key_and_jwt_secret_nothing_is_registered():
    class NoStore:
        def register_device(self, name, room):  # pragma: no cover - must not be reached
            raise AssertionError("registered although no env file could be written")

    settings = Settings(supabase_url="https://x.supabase.co", supabase_key="service")
    with pytest.raises(StoreError, match="SUPABASE_ANON_KEY and SUPABASE_JWT_SECRET"):
        devices.register_device(NoStore(), settings, "pi", "Room")


def test_the_supabase_env_file_holds_the_anon_key_and_a_device_token_only():
    settings = Settings(supabase_url="https://x.supabase.co", supabase_key="the-service-key",
                        supabase_anon_key="the-anon-key", supabase_jwt_secret="s" * 40)
    registration = DeviceRegistration(Device(uuid.uuid4(), "pi", "Room"), "the-device-key")
    text = devices.agent_env(settings, registration)
    lines = dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert lines["SUPABASE_KEY"] == "the-anon-key" and "the-service-key" not in text
    claims = jwt.decode(lines["PSYA_DEVICE_TOKEN"], "s" * 40, algorithms=["HS256"], audience="authenticated")
    assert claims["role"] == "psya_device" and claims["sub"] == str(registration.device.id)


# --- the device clock as measured by its agent (pi_agent/clock.py, public.device_heartbeat) ------------------------------


def test_the_devices_page_shows_each_devices_measured_clock_and_warns_above_two_seconds(new_app, system_store,
                                                                                         clinician_store):
    fast = clinician_store.register_device("pi-fast", "Room 1")
    close = clinician_store.register_device("pi-close", "Room 2")
    clinician_store.register_device("pi-new", "Room 3")
    # what each agent reports on its heartbeat: database time - device time
    system_store.as_actor(Actor.for_device(fast.device.id)).heartbeat(timedelta(milliseconds=-3400))
    system_store.as_actor(Actor.for_device(close.device.id)).heartbeat(timedelta(milliseconds=800))
    at, _ = admin_app(new_app, system_store)
    at = open_page(at, "pages/devices.py")
    assert not at.exception, at.exception
    frame = at.dataframe[0].value
    clocks = dict(zip(frame["Name"], frame["Clock"]))
    assert clocks == {"pi-fast": "3.4 s ahead", "pi-close": "0.8 s behind", "pi-new": "not measured yet"}
    warnings = [visible_text(w.value) for w in at.warning]
    assert warnings == ["pi-fast: this device's clock is 3.4 s ahead; readings are corrected. Set its clock (NTP) to "
                        "keep its local logs in step."]


@pytest.mark.parametrize("offset_ms, text, warned", [
    (None, "not measured yet", False), (0, "in sync", False), (-2000, "2.0 s ahead", False),
    (-2001, "2.0 s ahead", True), (2500, "2.5 s behind", True),
])
def test_clock_status_in_words(offset_ms, text, warned):
    status = devices.clock_status(Device(uuid.uuid4(), "pi", "Room", clock_offset_ms=offset_ms))
    assert status.text == text and bool(status.warning) is warned
