"""CONTRACT TEST of the Supabase REST backend's login throttle and login sessions against PostgREST's documented RPC
protocol (the fake PostgREST of test_supabase_rest_contract.py): the same SQL functions as the direct-Postgres backend,
called with named arguments, so both backends decide atomically in the database. The functions themselves run on a real
PostgreSQL in test_login_sessions.py and tests/app/test_auth.py."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from store.api import Actor, LoginThrottle
from store.common import hash_secret
from store.errors import PermissionDenied
from tests.store.test_supabase_rest_contract import CLINICIAN, Reply, fake, store  # noqa: F401 (fixtures)

THROTTLE = LoginThrottle(5, timedelta(seconds=2), timedelta(seconds=60), timedelta(minutes=15))
TOKEN = "session-token-" + "s" * 40


def clinician_row(**extra):
    return {"id": str(CLINICIAN.id), "username": "drgrey", "display_name": "Dr Grey", "role": "clinician",
            "password_hash": "$2b$12$x", "failed_logins": 0, "locked_until": None,
            "created_at": "2026-11-25T09:00:00+00:00", "active": True, **extra}


def test_a_login_attempt_asks_the_throttle_function_with_every_number_and_reads_the_wait(fake, store):
    fake.reply("POST", "/rest/v1/rpc/login_attempt_begin", Reply(200, 12.5))
    assert store.begin_login_attempt("drgrey", "203.0.113.9", THROTTLE) == timedelta(seconds=12.5)
    assert fake.only("POST", "/rest/v1/rpc/login_attempt_begin").body == {
        "p_username": "drgrey", "p_address": "203.0.113.9", "p_free_failures": 5, "p_first_delay_s": 2.0,
        "p_account_max_delay_s": 60.0, "p_address_max_delay_s": 900.0, "p_memory_s": 86400.0}


def test_a_successful_login_resets_the_throttle_then_audits(fake, store):
    fake.reply("POST", "/rest/v1/rpc/login_throttle_reset", Reply(200, None))
    fake.reply("GET", "/rest/v1/clinicians", Reply(200, [{"id": str(CLINICIAN.id)}]))
    fake.reply("POST", "/rest/v1/audit_log", Reply(201))
    store.record_login_result("drgrey", True, "203.0.113.9")
    assert fake.only("POST", "/rest/v1/rpc/login_throttle_reset").body == {"p_username": "drgrey", "p_address": "203.0.113.9"}
    audit = fake.only("POST", "/rest/v1/audit_log").body
    assert (audit["action"], audit["entity_id"]) == ("login", str(CLINICIAN.id))


def test_sessions_send_only_the_token_hash_and_resume_reads_the_clinician_row(fake, store):
    fake.reply("POST", "/rest/v1/rpc/login_session_open", Reply(200, str(uuid.uuid4())))
    fake.reply("POST", "/rest/v1/rpc/login_session_resume", Reply(200, [clinician_row(some_new_column=1)]), Reply(200, []))
    store.open_login_session(CLINICIAN.id, TOKEN, None)
    opened = fake.only("POST", "/rest/v1/rpc/login_session_open").body
    assert opened == {"p_clinician": str(CLINICIAN.id), "p_token_hash": hash_secret(TOKEN), "p_address": None}
    assert TOKEN not in str([r.body for r in fake.requests])
    resumed = store.resume_login_session(TOKEN, timedelta(minutes=120), timedelta(hours=12))
    assert resumed.id == CLINICIAN.id and resumed.active and resumed.password_hash == "$2b$12$x"
    assert fake.requests[-1].body == {"p_token_hash": hash_secret(TOKEN), "p_idle_s": 7200.0, "p_lifetime_s": 43200.0}
    assert store.resume_login_session(TOKEN, timedelta(minutes=120), timedelta(hours=12)) is None


def test_opening_a_session_for_a_deactivated_account_is_refused(fake, store):
    fake.reply("POST", "/rest/v1/rpc/login_session_open", Reply(200, None))
    with pytest.raises(PermissionDenied):
        store.open_login_session(CLINICIAN.id, TOKEN)


def test_deactivation_patches_the_account_and_revokes_its_sessions(fake, store):
    fake.reply("PATCH", "/rest/v1/clinicians", Reply(200, [clinician_row(active=False)]))
    fake.reply("POST", "/rest/v1/rpc/login_sessions_revoke", Reply(200, 2))
    fake.reply("POST", "/rest/v1/audit_log", Reply(201))
    store.set_clinician_active(CLINICIAN.id, False)
    patch = fake.only("PATCH", "/rest/v1/clinicians")
    assert patch.body == {"active": False} and patch.param("id") == f"eq.{CLINICIAN.id}"
    assert fake.only("POST", "/rest/v1/rpc/login_sessions_revoke").body == {"p_clinician": str(CLINICIAN.id),
                                                                          "p_keep_token_hash": None}


def test_only_the_system_actor_reaches_these_functions(fake, store):
    clinician = store.as_actor(Actor.for_clinician(CLINICIAN))
    for attempt in (lambda: clinician.begin_login_attempt("drgrey", None, THROTTLE),
                    lambda: clinician.resume_login_session(TOKEN, timedelta(hours=1), timedelta(hours=1)),
                    lambda: clinician.set_password_hash(CLINICIAN.id, "$2b$12$x")):
        with pytest.raises(PermissionDenied):
            attempt()
    assert fake.requests == []
