"""What every Store backend does, method by method, run on a real PostgreSQL for each backend that runs here
(see conftest.py: the DATABASE_URL path and the embedded default)."""

from __future__ import annotations

import math
import secrets
import time
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest

from fer.labels import LABELS
from store.api import Actor, LoginThrottle
from store.errors import InvalidInput, InvalidToken, NotFound, PermissionDenied, SessionNotLive
from store.models import NewPatient, Reading
from tests.store.conftest import HAPPY, SAD, readings_for


# --- clinicians and login ----------------------------------------------------------------------------------------------
def test_a_created_clinician_can_be_found_by_username_with_their_password_hash(world):
    before = world.system.count_clinicians()
    clinician, _ = world.clinician()
    found = world.system.get_clinician_by_username(clinician.username)
    assert found == clinician
    assert found.password_hash.startswith("$2")
    assert world.system.count_clinicians() == before + 1
    assert clinician.username in [c.username for c in world.system.list_clinicians()]


def test_an_unknown_username_is_none(world):
    assert world.system.get_clinician_by_username("nobody-" + uuid.uuid4().hex[:8]) is None


def test_usernames_are_unique(world):
    clinician, _ = world.clinician()
    with pytest.raises(InvalidInput):
        world.system.create_clinician(clinician.username, "Other", "$2b$04$x", "clinician")


def test_only_the_system_actor_creates_accounts(world):
    _, admin = world.clinician("admin")
    with pytest.raises(PermissionDenied):
        admin.create_clinician("new-" + uuid.uuid4().hex[:6], "New", "$2b$04$x", "clinician")


def test_an_unknown_role_is_rejected(world):
    with pytest.raises(InvalidInput, match="role"):
        world.system.create_clinician("r-" + uuid.uuid4().hex[:6], "R", "$2b$04$x", "superuser")


def test_clinicians_never_see_password_hashes_and_see_only_themselves(world):
    clinician, store = world.clinician()
    other, _ = world.clinician()
    me = store.get_clinician_by_username(clinician.username)
    assert me.id == clinician.id and me.password_hash == ""
    assert store.get_clinician_by_username(other.username) is None
    assert [c.id for c in store.list_clinicians()] == [clinician.id]


def test_login_attempts_are_counted_before_the_check_delayed_after_the_free_ones_and_success_resets(world):
    clinician, _ = world.clinician()
    throttle = LoginThrottle(free_failures=2, first_delay=timedelta(minutes=5), account_max_delay=timedelta(minutes=5),
                             address_max_delay=timedelta(minutes=5))
    assert world.system.begin_login_attempt(clinician.username, None, throttle) == timedelta(0)
    assert world.system.begin_login_attempt(clinician.username, None, throttle) == timedelta(0)
    assert world.system.get_clinician_by_username(clinician.username).failed_logins == 2
    assert world.system.begin_login_attempt(clinician.username, None, throttle) == timedelta(0)  # starts the delay
    delayed = world.system.get_clinician_by_username(clinician.username)
    assert delayed.failed_logins == 3 and delayed.locked_until > datetime.now(timezone.utc) + timedelta(minutes=4)
    wait = world.system.begin_login_attempt(clinician.username, None, throttle)
    assert timedelta(minutes=4) < wait <= timedelta(minutes=5)
    assert world.system.get_clinician_by_username(clinician.username).failed_logins == 3  # a refused try is not counted
    world.system.record_login_result(clinician.username, True)
    reset = world.system.get_clinician_by_username(clinician.username)
    assert reset.failed_logins == 0 and reset.locked_until is None
    assert world.system.begin_login_attempt(clinician.username, None, throttle) == timedelta(0)


def test_login_results_are_audited_even_for_unknown_usernames(world):
    clinician, _ = world.clinician()
    world.system.record_login_result(clinician.username, False)
    ghost = f"ghost-{secrets.token_hex(4)}"
    world.system.record_login_result(ghost, False)
    # The embedded backend's database is shared by the test session: look at this test's own rows, not the newest ones.
    events = [e for e in world.system.list_audit(limit=100_000)
              if e.action == "login_failed" and e.entity_id in (ghost, str(clinician.id))]
    assert [(e.action, e.entity_id) for e in events] == [("login_failed", ghost), ("login_failed", str(clinician.id))]


# --- patients ------------------------------------------------------------------------------------------------------------
def test_a_patient_is_created_with_every_field_and_owned_by_the_acting_clinician(world):
    clinician, store = world.clinician()
    patient = store.create_patient(NewPatient(
        full_name="Ana Pérez", date_of_birth=date(1990, 4, 1), diagnosis="F41.1 generalised anxiety",
        in_treatment_since=date(2025, 9, 1), contact="ana@example.org", notes="prefers mornings"))
    assert patient.clinician_id == clinician.id
    assert (patient.full_name, patient.date_of_birth, patient.in_treatment_since) == (
        "Ana Pérez", date(1990, 4, 1), date(2025, 9, 1))
    assert not patient.consent_facial_analysis and not patient.archived
    assert store.get_patient(patient.id) == patient


def test_update_patient_changes_only_the_named_fields(world):
    _, store = world.clinician()
    patient = world.patient(store, consent=False)
    updated = store.update_patient(patient.id, diagnosis="F32.1", notes="second opinion")
    assert (updated.diagnosis, updated.notes, updated.full_name) == ("F32.1", "second opinion", patient.full_name)


def test_update_patient_refuses_fields_that_are_not_patient_details(world):
    _, store = world.clinician()
    patient = world.patient(store, consent=False)
    with pytest.raises(InvalidInput, match="clinician_id"):
        store.update_patient(patient.id, clinician_id=uuid.uuid4())


def test_archived_patients_are_hidden_unless_asked_for(world):
    _, store = world.clinician()
    kept, gone = world.patient(store, name="Kept Patient"), world.patient(store, name="Gone Patient")
    assert store.archive_patient(gone.id).archived
    assert [p.id for p in store.list_patients()] == [kept.id]
    assert {p.id for p in store.list_patients(include_archived=True)} == {kept.id, gone.id}
    assert not store.archive_patient(gone.id, archived=False).archived


def test_list_patients_searches_names_case_insensitively_and_literally(world):
    _, store = world.clinician()
    maria = world.patient(store, name="María 100% Gómez")
    world.patient(store, name="John Smith")
    assert [p.id for p in store.list_patients("maría")] == [maria.id]
    assert [p.id for p in store.list_patients("100%")] == [maria.id]
    assert store.list_patients("_") == []  # LIKE wildcards are searched literally


def test_consent_is_recorded_with_date_and_scope_and_can_be_withdrawn(world):
    _, store = world.clinician()
    patient = world.patient(store, consent=False)
    given = store.record_consent(patient.id, True, date(2026, 2, 1), "in-person and remote sessions")
    assert (given.consent_facial_analysis, given.consent_date, given.consent_scope) == (
        True, date(2026, 2, 1), "in-person and remote sessions")
    assert not store.record_consent(patient.id, False, date(2026, 3, 1), "").consent_facial_analysis


def test_a_clinician_cannot_see_or_change_another_clinicians_patient(world):
    _, alice = world.clinician()
    _, bob = world.clinician()
    patient = world.patient(alice)
    with pytest.raises(NotFound):
        bob.get_patient(patient.id)
    with pytest.raises(NotFound):
        bob.update_patient(patient.id, notes="not mine")
    with pytest.raises(NotFound):
        bob.record_consent(patient.id, False, date.today(), "")
    assert patient.id not in [p.id for p in bob.list_patients()]
    assert alice.get_patient(patient.id).notes == ""


def test_an_admin_sees_every_patient(world):
    _, alice = world.clinician()
    _, admin = world.clinician("admin")
    patient = world.patient(alice)
    assert admin.get_patient(patient.id).id == patient.id
    assert patient.id in [p.id for p in admin.list_patients()]


def test_viewing_a_patient_is_audited_as_the_viewer(world):
    clinician, store = world.clinician()
    patient = world.patient(store)
    store.get_patient(patient.id)
    views = [e for e in world.system.list_audit(limit=100_000) if (e.action, e.entity_id) == ("view", str(patient.id))]
    assert [(e.actor, e.entity) for e in views] == [(f"clinician:{clinician.id}", "patient")]


def test_devices_cannot_read_patients(world):
    _, store = world.clinician()
    patient = world.patient(store)
    _, device_store = world.device(store)
    # a device's role has no privilege on patients at all (20261202010000_device_role.sql): refused, not just filtered
    with pytest.raises(PermissionDenied):
        device_store.get_patient(patient.id)
    with pytest.raises(PermissionDenied):
        device_store.list_patients()


# --- medical records -------------------------------------------------------------------------------------------------------
def test_record_entries_are_listed_newest_date_first_with_author(world):
    clinician, store = world.clinician()
    patient = world.patient(store)
    store.add_record_entry(patient.id, date(2026, 1, 10), "diagnosis", "F41.1")
    store.add_record_entry(patient.id, date(2026, 3, 2), "medication", "sertraline 50 mg")
    store.add_record_entry(patient.id, date(2026, 2, 14), "session_note", "better sleep")
    entries = store.list_record_entries(patient.id)
    assert [e.entry_date for e in entries] == [date(2026, 3, 2), date(2026, 2, 14), date(2026, 1, 10)]
    assert {e.author_id for e in entries} == {clinician.id}


def test_record_entries_reject_unknown_kinds_and_empty_text(world):
    _, store = world.clinician()
    patient = world.patient(store)
    with pytest.raises(InvalidInput, match="kind"):
        store.add_record_entry(patient.id, date.today(), "gossip", "x")
    with pytest.raises(InvalidInput, match="record_text"):
        store.add_record_entry(patient.id, date.today(), "other", "   ")


def test_another_clinician_cannot_read_or_add_records(world):
    _, alice = world.clinician()
    _, bob = world.clinician()
    patient = world.patient(alice)
    alice.add_record_entry(patient.id, date.today(), "other", "private")
    with pytest.raises(NotFound):
        bob.list_record_entries(patient.id)
    with pytest.raises(NotFound):
        bob.add_record_entry(patient.id, date.today(), "other", "intrusion")


# --- devices -----------------------------------------------------------------------------------------------------------------
def test_a_registered_device_authenticates_with_its_key_only(world):
    _, store = world.clinician()
    registration = store.register_device("pi-room-3", "Room 3")
    assert len(registration.key) >= 40
    assert world.system.authenticate_device(registration.device.id, registration.key) == registration.device
    with pytest.raises(PermissionDenied):
        world.system.authenticate_device(registration.device.id, registration.key + "x")
    with pytest.raises(PermissionDenied):
        world.system.authenticate_device(uuid.uuid4(), registration.key)
    assert registration.device.id in [d.id for d in store.list_devices()]


def test_only_the_system_actor_authenticates_devices(world):
    _, store = world.clinician()
    registration = store.register_device("pi", "Room")
    with pytest.raises(PermissionDenied):
        store.authenticate_device(registration.device.id, registration.key)


def test_heartbeat_stamps_the_device(world):
    _, store = world.clinician()
    device, device_store = world.device(store)
    assert device.last_heartbeat is None
    device_store.heartbeat()
    stamped = next(d for d in store.list_devices() if d.id == device.id)
    assert stamped.last_heartbeat is not None
    assert abs((stamped.last_heartbeat - datetime.now(timezone.utc)).total_seconds()) < 60
    assert stamped.clock_offset_ms is None and stamped.clock_measured_at is None  # nothing measured yet


def test_heartbeat_answers_the_database_clock_and_keeps_the_measured_offset(world):
    _, store = world.clinician()
    device, device_store = world.device(store)
    before = datetime.now(timezone.utc)
    answered = device_store.heartbeat(timedelta(milliseconds=-3400))
    assert answered.tzinfo is not None and abs(answered - before) < timedelta(seconds=60)
    assert device_store.heartbeat() >= answered  # the clock of each call: it moves on
    stamped = next(d for d in store.list_devices() if d.id == device.id)
    assert stamped.clock_offset_ms == -3400 and stamped.clock_measured_at is not None  # kept by the heartbeat without one
    with pytest.raises(InvalidInput, match="set the device's clock"):
        device_store.heartbeat(timedelta(hours=25))
    with pytest.raises(InvalidInput):
        device_store.heartbeat(3400)  # not a timedelta


def test_a_device_finds_its_live_session_and_nothing_after_it_ends(world):
    _, store = world.clinician()
    session, device_store = world.in_person_session(store)
    assert device_store.live_session_for_device().id == session.id
    store.end_session(session.id)
    assert device_store.live_session_for_device() is None


# --- sessions ----------------------------------------------------------------------------------------------------------------
def test_an_in_person_session_starts_live_on_its_device(world):
    clinician, store = world.clinician()
    session, _ = world.in_person_session(store)
    assert (session.status, session.mode, session.clinician_id) == ("live", "in_person", clinician.id)
    assert session.started_at is not None and session.ended_at is None and session.device_id is not None


def test_no_session_starts_without_consent(world):
    _, store = world.clinician()
    patient = world.patient(store, consent=False)
    with pytest.raises(PermissionDenied, match="consent"):
        store.start_session(patient.id, "recorded_video")
    with pytest.raises(PermissionDenied, match="consent"):
        store.start_remote_session(patient.id)


def test_no_session_starts_for_an_archived_patient(world):
    _, store = world.clinician()
    patient = world.patient(store)
    store.archive_patient(patient.id)
    with pytest.raises(PermissionDenied, match="archived"):
        store.start_session(patient.id, "recorded_video")


def test_in_person_needs_a_device_and_remote_needs_a_token(world):
    _, store = world.clinician()
    patient = world.patient(store)
    with pytest.raises(InvalidInput, match="device"):
        store.start_session(patient.id, "in_person")
    with pytest.raises(InvalidInput, match="start_remote_session"):
        store.start_session(patient.id, "remote")
    with pytest.raises(InvalidInput, match="mode"):
        store.start_session(patient.id, "telepathy")
    with pytest.raises(NotFound):
        store.start_session(patient.id, "in_person", uuid.uuid4())


def test_a_device_runs_one_live_session_at_a_time(world):
    _, store = world.clinician()
    first, _ = world.in_person_session(store)
    other_patient = world.patient(store)
    with pytest.raises(InvalidInput, match="already in a live session"):
        store.start_session(other_patient.id, "in_person", first.device_id)
    store.end_session(first.id)
    assert store.start_session(other_patient.id, "in_person", first.device_id).status == "live"


def test_ending_a_session_stamps_the_end_once(world):
    _, store = world.clinician()
    session, _ = world.in_person_session(store)
    ended = store.end_session(session.id)
    assert ended.status == "ended" and ended.ended_at >= ended.started_at
    assert store.end_session(session.id).ended_at == ended.ended_at


def test_sessions_list_newest_first_and_filter_by_patient_and_status(world):
    _, store = world.clinician()
    patient = world.patient(store)
    first = store.start_session(patient.id, "recorded_video")
    store.end_session(first.id)
    second = store.start_session(patient.id, "recorded_video")
    other = store.start_session(world.patient(store).id, "recorded_video")
    assert [s.id for s in store.list_sessions(patient.id)] == [second.id, first.id]
    assert [s.id for s in store.list_sessions(patient.id, status="ended")] == [first.id]
    assert {s.id for s in store.list_sessions(status="live")} == {second.id, other.id}
    with pytest.raises(InvalidInput):
        store.list_sessions(status="paused")


def test_another_clinician_cannot_see_or_end_a_session(world):
    _, alice = world.clinician()
    _, bob = world.clinician()
    session, _ = world.in_person_session(alice)
    with pytest.raises(NotFound):
        bob.get_session(session.id)
    with pytest.raises(NotFound):
        bob.end_session(session.id)
    assert bob.list_sessions() == []
    assert alice.get_session(session.id).status == "live"


def test_a_remote_session_token_opens_that_session_until_it_ends(world):
    _, store = world.clinician()
    patient = world.patient(store)
    join = store.start_remote_session(patient.id, ttl=timedelta(minutes=30))
    assert join.session.mode == "remote" and join.session.status == "live"
    assert len(join.token) >= 40
    remote = world.system.as_actor(Actor("remote"))
    assert remote.session_for_token(join.token).id == join.session.id
    assert timedelta(minutes=29) < join.session.join_expires_at - join.session.started_at <= timedelta(minutes=30)
    store.end_session(join.session.id)
    with pytest.raises(InvalidToken):
        remote.session_for_token(join.token)


def test_unknown_malformed_and_expired_tokens_are_invalid(world):
    _, store = world.clinician()
    join = store.start_remote_session(world.patient(store).id, ttl=timedelta(milliseconds=300))
    for token in ["", "short", "x" * 43, "' OR 1=1 --" * 3, "a" * 5000, None, join.token + "\x00"]:
        with pytest.raises(InvalidToken):
            world.system.session_for_token(token)
    time.sleep(0.5)
    with pytest.raises(InvalidToken):
        world.system.session_for_token(join.token)


# --- readings ----------------------------------------------------------------------------------------------------------------
def test_a_device_batch_is_stored_with_millisecond_times_boxes_and_probabilities(world):
    _, store = world.clinician()
    session, device_store = world.in_person_session(store)
    batch = readings_for(session.id, 3)
    assert device_store.insert_readings(batch) == 3
    page = store.readings_since(session.id)
    assert [r.id for r in page.readings] == [r.id for r in batch]
    assert page.readings == batch  # captured_at (ms), probabilities, box, faces, source all round-trip
    assert page.readings[1].captured_at == batch[0].captured_at + timedelta(milliseconds=250)
    assert page.readings[1].captured_at.microsecond % 1000 == 0


def test_a_retried_batch_is_not_doubled(world):
    _, store = world.clinician()
    session, device_store = world.in_person_session(store)
    batch = readings_for(session.id, 5)
    assert device_store.insert_readings(batch[:3]) == 3
    assert device_store.insert_readings(batch) == 2
    assert device_store.insert_readings(batch + batch) == 0
    assert len(store.readings_since(session.id).readings) == 5


def test_readings_since_pages_with_a_cursor_in_insertion_order(world):
    _, store = world.clinician()
    session, device_store = world.in_person_session(store)
    device_store.insert_readings(readings_for(session.id, 5))
    first = store.readings_since(session.id, limit=2)
    rest = store.readings_since(session.id, cursor=first.cursor)
    assert len(first.readings) == 2 and len(rest.readings) == 3
    assert rest.cursor > first.cursor > 0
    # captured earlier (still after the start, within the clock skew), sent later
    later = readings_for(session.id, 2, start=session.started_at - timedelta(seconds=30))
    device_store.insert_readings(later)
    assert [r.id for r in store.readings_since(session.id, cursor=rest.cursor).readings] == [r.id for r in later]
    empty = store.readings_since(session.id, cursor=store.readings_since(session.id).cursor)
    assert empty.readings == [] and empty.cursor == store.readings_since(session.id).cursor


def test_readings_since_rejects_bad_cursors_and_limits(world):
    _, store = world.clinician()
    session, _ = world.in_person_session(store)
    for cursor, limit in [(-1, 10), ("0", 10), (0, 0), (0, 10**9)]:
        with pytest.raises(InvalidInput):
            store.readings_since(session.id, cursor=cursor, limit=limit)


def test_the_session_aggregate_counts_means_and_dominant_emotions(world):
    _, store = world.clinician()
    session, device_store = world.in_person_session(store)
    happy = readings_for(session.id, 3, HAPPY)
    sad = readings_for(session.id, 1, SAD, start=happy[0].captured_at + timedelta(seconds=10))
    device_store.insert_readings(happy + sad)
    aggregate = store.session_aggregate(session.id)
    assert aggregate.readings == 4
    assert aggregate.first_at == happy[0].captured_at
    assert aggregate.last_at == sad[0].captured_at
    expected = tuple((3 * h + s) / 4 for h, s in zip(HAPPY, SAD))
    assert aggregate.mean_probabilities == pytest.approx(expected)
    assert aggregate.dominant_counts == {**{label: 0 for label in LABELS}, "happy": 3, "sad": 1}


def test_an_empty_session_aggregates_to_zeros(world):
    _, store = world.clinician()
    session, _ = world.in_person_session(store)
    aggregate = store.session_aggregate(session.id)
    assert (aggregate.readings, aggregate.first_at, aggregate.mean_probabilities) == (0, None, (0.0,) * 7)
    assert sum(aggregate.dominant_counts.values()) == 0


def test_ties_go_to_the_first_label_like_reading_dominant(world):
    _, store = world.clinician()
    session, device_store = world.in_person_session(store)
    tie = readings_for(session.id, 1, (0.0, 0.0, 0.0, 0.5, 0.5, 0.0, 0.0))
    device_store.insert_readings(tie)
    assert tie[0].dominant == "happy"
    assert store.session_aggregate(session.id).dominant_counts["happy"] == 1


BAD_PROBABILITIES = {
    "nan": (math.nan, 0.1, 0.1, 0.4, 0.1, 0.1, 0.2),
    "negative": (-0.1, 0.2, 0.1, 0.4, 0.1, 0.1, 0.2),
    "above one": (1.5, -0.5, 0, 0, 0, 0, 0),
    "infinite": (math.inf, 0, 0, 0, 0, 0, 0),
    "six values": (0.2, 0.2, 0.2, 0.2, 0.1, 0.1),
    "eight values": (0.1,) * 7 + (0.3,),
    "sum 0.9": (0.1, 0.1, 0.1, 0.3, 0.1, 0.1, 0.1),
    "sum 1.01": (0.11, 0.1, 0.1, 0.4, 0.1, 0.1, 0.1),
    "text": ("0.1", 0.1, 0.1, 0.4, 0.1, 0.1, 0.2),
    "bool": (True, 0, 0, 0, 0, 0, 0),
    "not a sequence": 1.0,
}


@pytest.mark.parametrize("probabilities", BAD_PROBABILITIES.values(), ids=BAD_PROBABILITIES.keys())
def test_bad_probabilities_reject_the_whole_batch(world, probabilities):
    _, store = world.clinician()
    session, device_store = world.in_person_session(store)
    good = readings_for(session.id, 2)
    bad = Reading(session.id, datetime.now(timezone.utc), probabilities, "pi")
    with pytest.raises(InvalidInput, match="reading 2"):
        device_store.insert_readings(good + [bad])
    assert store.readings_since(session.id).readings == []


def test_probabilities_within_the_tolerance_are_accepted(world):
    _, store = world.clinician()
    session, device_store = world.in_person_session(store)
    assert device_store.insert_readings(readings_for(session.id, 1, (0.1, 0.1, 0.1, 0.4, 0.1, 0.1, 0.1009))) == 1


@pytest.mark.parametrize("change", [
    {"captured_at": datetime(2026, 1, 1)},  # naive: ambiguous time zone
    {"source": "webcam"},
    {"box": (1, 2, 0, 4)},
    {"box": (1, 2, 3)},
    {"box": (1.5, 2, 3, 4)},
    {"faces": -1},
], ids=["naive time", "unknown source", "zero width box", "three value box", "float box", "negative faces"])
def test_malformed_readings_are_rejected(world, change):
    _, store = world.clinician()
    session, device_store = world.in_person_session(store)
    values = dict(session_id=session.id, captured_at=datetime.now(timezone.utc), probabilities=HAPPY, source="pi")
    with pytest.raises(InvalidInput):
        device_store.insert_readings([Reading(**{**values, **change})])


def test_readings_for_an_unknown_session_are_refused(world):
    _, store = world.clinician()
    _, device_store = world.in_person_session(store)
    with pytest.raises(NotFound):
        device_store.insert_readings(readings_for(uuid.uuid4(), 1))


def test_readings_captured_after_the_session_ended_are_refused_and_nothing_is_written(world):
    # (readings captured before the end are still taken for a while: test_late_readings.py)
    _, store = world.clinician()
    session, device_store = world.in_person_session(store)
    ended = store.end_session(session.id)
    with pytest.raises(SessionNotLive):
        device_store.insert_readings(readings_for(session.id, 2, start=ended.ended_at + timedelta(seconds=6)))
    assert store.readings_since(session.id).readings == []


def test_a_batch_spanning_a_live_and_an_ended_session_writes_nothing(world):
    _, store = world.clinician()
    live = store.start_session(world.patient(store).id, "recorded_video")
    ended = store.start_session(world.patient(store).id, "recorded_video")
    end = store.end_session(ended.id).ended_at
    with pytest.raises(SessionNotLive):
        store.insert_readings(readings_for(live.id, 2, source="video") +
                              readings_for(ended.id, 1, source="video", start=end + timedelta(seconds=6)))
    assert store.readings_since(live.id).readings == []


def test_a_device_cannot_write_into_a_session_of_another_device(world):
    _, store = world.clinician()
    session, _ = world.in_person_session(store)
    _, intruder = world.device(store)
    with pytest.raises((NotFound, PermissionDenied)):
        intruder.insert_readings(readings_for(session.id, 1))
    assert store.readings_since(session.id).readings == []


def test_a_clinician_writes_recorded_video_readings_into_their_own_live_session(world):
    _, store = world.clinician()
    session = store.start_session(world.patient(store).id, "recorded_video")
    assert store.insert_readings(readings_for(session.id, 4, source="video")) == 4
    _, other = world.clinician()
    with pytest.raises(NotFound):
        other.insert_readings(readings_for(session.id, 1, source="video"))


def test_an_empty_batch_is_a_no_op(world):
    _, store = world.clinician()
    assert store.insert_readings([]) == 0


def test_remote_readings_need_a_valid_token_for_that_session(world):
    _, store = world.clinician()
    join = store.start_remote_session(world.patient(store).id)
    remote = world.system.as_actor(Actor("remote"))
    batch = readings_for(join.session.id, 3, source="remote")
    assert remote.insert_remote_readings(join.token, batch) == 3
    assert remote.insert_remote_readings(join.token, batch) == 0
    assert len(store.readings_since(join.session.id).readings) == 3
    with pytest.raises(InvalidToken):
        remote.insert_remote_readings("not-the-token-" + "x" * 30, batch)
    other = store.start_session(world.patient(store).id, "recorded_video")
    with pytest.raises(InvalidInput, match="token's session"):
        remote.insert_remote_readings(join.token, readings_for(other.id, 1, source="remote"))
    assert store.readings_since(other.id).readings == []
    end = store.end_session(join.session.id).ended_at
    with pytest.raises(SessionNotLive):
        remote.insert_remote_readings(join.token, readings_for(join.session.id, 1, source="remote",
                                                               start=end + timedelta(seconds=6)))
    with pytest.raises(InvalidToken):
        remote.insert_remote_readings(join.token, [])  # the link itself is dead: the patient's page says so


def test_remote_patients_cannot_read_anything(world):
    _, store = world.clinician()
    join = store.start_remote_session(world.patient(store).id)
    remote = world.system.as_actor(Actor("remote"))
    with pytest.raises((NotFound, PermissionDenied)):
        remote.readings_since(join.session.id)
    with pytest.raises((NotFound, PermissionDenied)):
        remote.get_patient(join.session.patient_id)


# --- annotations and audit -------------------------------------------------------------------------------------------------------
def test_annotations_are_listed_in_session_time_order(world):
    clinician, store = world.clinician()
    session = store.start_session(world.patient(store).id, "recorded_video")
    t0 = datetime(2026, 11, 25, 9, tzinfo=timezone.utc)
    store.add_annotation(session.id, t0 + timedelta(minutes=5), "talked about work")
    store.add_annotation(session.id, t0 + timedelta(minutes=1), "arrived anxious")
    notes = store.list_annotations(session.id)
    assert [n.text for n in notes] == ["arrived anxious", "talked about work"]
    assert {n.author_id for n in notes} == {clinician.id}


def test_annotations_need_an_aware_time_and_short_text(world):
    _, store = world.clinician()
    session = store.start_session(world.patient(store).id, "recorded_video")
    with pytest.raises(InvalidInput, match="timezone"):
        store.add_annotation(session.id, datetime(2026, 1, 1), "x")
    with pytest.raises(InvalidInput, match="annotation_text"):
        store.add_annotation(session.id, datetime.now(timezone.utc), "x" * 2001)


def test_another_clinician_cannot_annotate_or_read_annotations(world):
    _, alice = world.clinician()
    _, bob = world.clinician()
    session = alice.start_session(world.patient(alice).id, "recorded_video")
    with pytest.raises(NotFound):
        bob.add_annotation(session.id, datetime.now(timezone.utc), "x")
    with pytest.raises(NotFound):
        bob.list_annotations(session.id)


def test_audit_appends_as_the_acting_actor_and_admins_read_it_newest_first(world):
    clinician, store = world.clinician()
    _, admin = world.clinician("admin")
    entity_id = f"abc-{secrets.token_hex(4)}"
    store.audit("export", "session", entity_id)
    store.audit("export", "session", entity_id + "-later")
    events = admin.list_audit(limit=100_000)
    ours = [(e.actor, e.action, e.entity, e.entity_id) for e in events if e.entity_id.startswith(entity_id)]
    assert ours == [(f"clinician:{clinician.id}", "export", "session", entity_id + "-later"),
                    (f"clinician:{clinician.id}", "export", "session", entity_id)]
    assert [e.id for e in events] == sorted((e.id for e in events), reverse=True)


def test_only_admins_read_the_audit_log(world):
    _, store = world.clinician()
    with pytest.raises(PermissionDenied):
        store.list_audit()


# --- hostile and overlong text ------------------------------------------------------------------------------------------------
HOSTILE = [
    "Robert'); DROP TABLE patients;--",
    "' OR '1'='1",
    "\"; SELECT pg_sleep(10); --",
    "$$; DELETE FROM readings; $$",
    "<script>alert('x')</script>",
    "名前 — émoji 🙂 \\ backslash % percent _ underscore",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_stored_verbatim_and_harms_nothing(world, text):
    _, store = world.clinician()
    patient = store.create_patient(NewPatient(full_name=text, notes=text, diagnosis=text, contact=text))
    store.record_consent(patient.id, True, date.today(), text)
    entry = store.add_record_entry(patient.id, date.today(), "other", text)
    session = store.start_session(patient.id, "recorded_video")
    note = store.add_annotation(session.id, datetime.now(timezone.utc), text)
    stored = store.get_patient(patient.id)
    assert (stored.full_name, stored.notes, stored.diagnosis, stored.contact, stored.consent_scope) == (text,) * 5
    assert store.list_record_entries(patient.id)[0].text == entry.text == text
    assert store.list_annotations(session.id)[0].text == note.text == text
    assert [p.id for p in store.list_patients(text)] == [patient.id]


@pytest.mark.parametrize("field, limit", [("full_name", 200), ("notes", 20000), ("diagnosis", 2000), ("contact", 500)])
def test_overlong_patient_text_is_refused_naming_the_field(world, field, limit):
    _, store = world.clinician()
    assert getattr(store.create_patient(NewPatient(**{"full_name": "x", field: "y" * limit})), field) == "y" * limit
    with pytest.raises(InvalidInput, match=field):
        store.create_patient(NewPatient(**{"full_name": "x", field: "y" * (limit + 1)}))


def test_nul_characters_and_non_text_are_refused(world):
    _, store = world.clinician()
    with pytest.raises(InvalidInput, match="NUL"):
        store.create_patient(NewPatient(full_name="bad\x00name"))
    with pytest.raises(InvalidInput, match="full_name"):
        store.create_patient(NewPatient(full_name=12345))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="full_name"):
        store.create_patient(NewPatient(full_name="  "))


def test_malformed_ids_are_invalid_input(world):
    _, store = world.clinician()
    with pytest.raises(InvalidInput):
        store.get_patient("1; DROP TABLE patients")  # type: ignore[arg-type]
