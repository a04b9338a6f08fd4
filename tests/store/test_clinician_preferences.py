"""Clinician preferences (issue 12): each clinician's time zone, on a real PostgreSQL under row-level security."""

from __future__ import annotations

import bcrypt
import pytest

from store.api import Actor
from store.errors import InvalidInput, PermissionDenied


def clinician_store(system_store, store_factory, username: str):
    who = system_store.create_clinician(username, f"Dr {username}", bcrypt.hashpw(b"x" * 12, bcrypt.gensalt(rounds=4)).decode(), "clinician")
    return store_factory(Actor.for_clinician(who)), who


def test_a_clinician_sets_and_clears_their_own_time_zone(system_store, store_factory, admin_store):
    store, who = clinician_store(system_store, store_factory, "tz_one")
    assert store.get_time_zone() is None
    store.set_time_zone("Europe/Madrid")
    assert store.get_time_zone() == "Europe/Madrid"
    store.set_time_zone("America/New_York")
    assert store.get_time_zone() == "America/New_York"
    store.set_time_zone(None)
    assert store.get_time_zone() is None
    assert ("update", "clinician_preferences", str(who.id)) in {(e.action, e.entity, e.entity_id) for e in admin_store.list_audit()}


def test_a_time_zone_is_personal(system_store, store_factory):
    one, _ = clinician_store(system_store, store_factory, "tz_a")
    two, _ = clinician_store(system_store, store_factory, "tz_b")
    one.set_time_zone("Asia/Tokyo")
    assert two.get_time_zone() is None  # row-level security: nobody reads or changes another's preference
    two.set_time_zone("Europe/Lisbon")
    assert one.get_time_zone() == "Asia/Tokyo"


def test_an_unknown_time_zone_is_refused_and_devices_have_none(system_store, store_factory):
    store, _ = clinician_store(system_store, store_factory, "tz_bad")
    for bad in ("Mars/Olympus", "Europe/Madrid; DROP TABLE x", "", "x" * 80):
        with pytest.raises(InvalidInput):
            store.set_time_zone(bad)
    assert store.get_time_zone() is None
    with pytest.raises(PermissionDenied):
        system_store.get_time_zone()


# --- remote join links (issue 12) ----------------------------------------------------------------------------------------


def test_a_join_link_is_kept_for_its_own_clinician_and_a_new_token_invalidates_the_old(system_store, store_factory):
    from datetime import date

    from store.errors import InvalidToken
    from store.models import NewPatient

    store, _ = clinician_store(system_store, store_factory, "links_a")
    other, _ = clinician_store(system_store, store_factory, "links_b")
    patient = store.record_consent(store.create_patient(NewPatient("Link Patient")).id, True, date.today(), "sessions")
    started = store.start_remote_session(patient.id)
    store.save_join_link(started.session.id, "ciphertext-1")
    store.save_join_link(started.session.id, "ciphertext-2")
    assert store.get_join_link(started.session.id) == "ciphertext-2"
    assert other.get_join_link(started.session.id) is None  # row-level security
    with pytest.raises(Exception):
        other.save_join_link(started.session.id, "hijack")
    rotated = store.rotate_join_token(started.session.id)
    assert rotated.token != started.token and rotated.session.id == started.session.id
    with pytest.raises(InvalidToken):
        system_store.session_for_token(started.token)
    assert system_store.session_for_token(rotated.token).id == started.session.id
    with pytest.raises(InvalidInput):
        other.rotate_join_token(started.session.id)  # not theirs: nothing changes
    store.end_session(started.session.id)
    with pytest.raises(InvalidInput):
        store.rotate_join_token(started.session.id)  # an ended session gets no new link
