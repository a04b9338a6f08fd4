"""Server-side login sessions on a real PostgreSQL: logout and revocation are stored, so they hold after an app restart
(a new connection pool) and for every app process; idle and absolute lifetimes; deactivation; nobody but the service role
can read or change the sessions or the throttle."""

from __future__ import annotations

import time
from datetime import timedelta

import psycopg
import pytest

from store.errors import PermissionDenied
from store.postgres import PostgresStore

HOUR = timedelta(hours=1)
TOKEN = "a-browser-session-token-" + "t" * 32
OTHER = "another-browser-token---" + "u" * 32


def restarted(database_url: str) -> PostgresStore:
    """What a restarted (or a second) app process has: its own pool, no memory of the first one."""
    return PostgresStore.connect(database_url, max_size=2)


def test_a_session_survives_an_app_restart_and_a_logout_holds_in_every_process(database_url, system_store, clinician):
    system_store.open_login_session(clinician.id, TOKEN, "192.0.2.1")
    first, second = restarted(database_url), restarted(database_url)
    try:
        assert first.resume_login_session(TOKEN, HOUR, HOUR).id == clinician.id
        assert second.resume_login_session(TOKEN, HOUR, HOUR).id == clinician.id
        first.end_login_session(TOKEN)  # logout in one process
        assert second.resume_login_session(TOKEN, HOUR, HOUR) is None  # a copied cookie is dead everywhere
    finally:
        first.close()
        second.close()
    later = restarted(database_url)
    try:
        assert later.resume_login_session(TOKEN, HOUR, HOUR) is None  # and after a restart
    finally:
        later.close()


def test_unknown_tokens_sign_nobody_in(system_store):
    assert system_store.resume_login_session("never-issued-" + "z" * 40, HOUR, HOUR) is None


def test_an_idle_session_and_one_past_its_lifetime_end(system_store, clinician):
    system_store.open_login_session(clinician.id, TOKEN)
    system_store.open_login_session(clinician.id, OTHER)
    time.sleep(1.2)
    assert system_store.resume_login_session(TOKEN, timedelta(seconds=1), HOUR) is None  # idle for 1.2 s > 1 s
    assert system_store.resume_login_session(OTHER, HOUR, timedelta(seconds=1)) is None  # 1.2 s old > 1 s lifetime
    assert system_store.resume_login_session(OTHER, HOUR, HOUR) is not None  # nothing else wrong with it


def test_each_run_restarts_the_idle_clock(system_store, clinician):
    system_store.open_login_session(clinician.id, TOKEN)
    # 4 x 1 s > the 3 s limit in all; each call leaves 2 s of slack for a slow database round trip.
    for _ in range(4):
        time.sleep(1.0)
        assert system_store.resume_login_session(TOKEN, timedelta(seconds=3), HOUR) is not None


def test_revoking_ends_every_session_but_the_one_kept(system_store, clinician):
    system_store.open_login_session(clinician.id, TOKEN)
    system_store.open_login_session(clinician.id, OTHER)
    assert system_store.revoke_login_sessions(clinician.id, keep_token=TOKEN) == 1
    assert system_store.resume_login_session(TOKEN, HOUR, HOUR) is not None
    assert system_store.resume_login_session(OTHER, HOUR, HOUR) is None


def test_a_deactivated_account_loses_its_sessions_and_gets_no_new_one(system_store, clinician):
    system_store.open_login_session(clinician.id, TOKEN)
    system_store.set_clinician_active(clinician.id, False)
    assert system_store.resume_login_session(TOKEN, HOUR, HOUR) is None
    assert system_store.get_clinician_by_username(clinician.username).active is False
    with pytest.raises(PermissionDenied):
        system_store.open_login_session(clinician.id, OTHER)
    system_store.set_clinician_active(clinician.id, True)
    assert system_store.resume_login_session(TOKEN, HOUR, HOUR) is None  # reactivating does not revive old sessions
    system_store.open_login_session(clinician.id, OTHER)
    assert system_store.resume_login_session(OTHER, HOUR, HOUR).active is True


def test_only_the_system_actor_handles_sessions_and_accounts(clinician_store, admin_store, clinician):
    for store in (clinician_store, admin_store):
        with pytest.raises(PermissionDenied):
            store.open_login_session(clinician.id, TOKEN)
        with pytest.raises(PermissionDenied):
            store.resume_login_session(TOKEN, HOUR, HOUR)
        with pytest.raises(PermissionDenied):
            store.set_password_hash(clinician.id, "$2b$04$x")
        with pytest.raises(PermissionDenied):
            store.set_clinician_active(clinician.id, False)


@pytest.mark.parametrize("role", ["authenticated", "anon"])
def test_database_roles_other_than_the_service_role_cannot_touch_sessions_or_the_throttle(database_url, system_store, clinician, role):
    system_store.open_login_session(clinician.id, TOKEN)
    statements = [
        "SELECT * FROM public.login_sessions",
        "SELECT * FROM public.login_throttle",
        "UPDATE public.login_sessions SET ended_at = NULL",
        "SELECT public.login_session_resume(repeat('a', 64), 3600, 3600)",
        "SELECT public.login_throttle_reset('x', NULL)",
        "SELECT public.login_attempt_begin('x', NULL, 5, 1, 1, 1, 1)",
    ]
    for statement in statements:
        with psycopg.connect(database_url) as conn:
            conn.execute(f"SET ROLE {role}")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
