"""app.auth: password rules, lock-out arithmetic, the cookie key, and login against a real store."""

from __future__ import annotations

import stat
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from app import auth
from settings import Settings
from store.errors import InvalidInput
from store.models import Clinician

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


def account(failed: int = 0, locked_until: datetime | None = None) -> Clinician:
    return Clinician(uuid.uuid4(), "ana", "Dr Ana", "clinician", "$2b$...", failed, locked_until)


def test_password_rules_name_every_problem():
    assert auth.password_problems("a-long-enough-1") == []
    problems = " ".join(auth.password_problems(" short ", "other"))
    assert "at least 10" in problems and "spaces" in problems and "differ" in problems
    assert auth.password_problems("onlyletterslong") == ["The password must mix letters with digits or symbols."]
    assert auth.password_problems("1234567890123") == ["The password must mix letters with digits or symbols."]


def test_usernames_are_lower_cased_and_checked():
    assert auth.normalize_username("  Dr.Ana ") == "dr.ana"
    assert auth.username_problems("Dr.Ana") == []
    assert auth.username_problems("a") and auth.username_problems("ana; drop table")


def test_the_lock_comes_with_the_failure_that_reaches_the_limit():
    settings = Settings(max_login_failures=3, lockout_minutes=10)
    assert auth.lock_after_failure(account(failed=1), settings, NOW) is None
    assert auth.lock_after_failure(account(failed=2), settings, NOW) == NOW + timedelta(minutes=10)


def test_an_expired_lock_starts_a_fresh_count():
    settings = Settings(max_login_failures=3, lockout_minutes=10)
    expired = account(failed=3, locked_until=NOW - timedelta(minutes=1))
    assert not auth.is_locked(expired, NOW)
    assert auth.lock_after_failure(expired, settings, NOW) is None
    assert auth.is_locked(account(failed=3, locked_until=NOW + timedelta(seconds=1)), NOW)


def test_the_cookie_key_is_generated_once_and_kept_private(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    first = auth.cookie_key(settings)
    assert len(first) >= 48 and auth.cookie_key(settings) == first
    assert stat.S_IMODE((tmp_path / "data" / "cookie_key").stat().st_mode) == 0o600
    assert auth.cookie_key(Settings(data_dir=tmp_path / "data", cookie_key="from-secrets")) == "from-secrets"


def test_our_hashes_are_the_ones_streamlit_authenticator_checks():
    from streamlit_authenticator.utilities.hasher import Hasher

    hashed = auth.hash_password("a-long-enough-1")
    assert hashed.startswith("$2b$") and Hasher.check_pw("a-long-enough-1", hashed)
    assert auth.check_password("a-long-enough-1", Hasher.hash("a-long-enough-1"))
    assert not auth.check_password("a-long-enough-1", "not a hash")


def test_credentials_for_streamlit_authenticator_carry_the_bcrypt_hashes():
    clinician = account()
    credentials = auth.credentials_for_authenticator([clinician])
    assert credentials["usernames"]["ana"]["password"] == clinician.password_hash
    assert credentials["usernames"]["ana"]["roles"] == ["clinician"]


def test_login_against_the_store_counts_failures_and_resets_on_success(system_store, clinician):
    settings = Settings(max_login_failures=5)
    assert not auth.attempt_login(system_store, settings, clinician.username, "wrong").ok
    assert system_store.get_clinician_by_username(clinician.username).failed_logins == 1
    result = auth.attempt_login(system_store, settings, clinician.username.upper(), "correct horse battery staple")
    assert result.ok and result.clinician.id == clinician.id
    assert system_store.get_clinician_by_username(clinician.username).failed_logins == 0
    assert not auth.attempt_login(system_store, settings, "nobody\x00", "x").ok  # odd input: refused, not a crash


def test_the_first_admin_can_be_created_only_once(system_store):
    admin = auth.create_first_admin(system_store, "Boss", "Dr Boss", "boss-password-1", "boss-password-1")
    assert admin.username == "boss" and admin.role == "admin"
    with pytest.raises(InvalidInput, match="already exists"):
        auth.create_first_admin(system_store, "other", "Dr Other", "boss-password-1", "boss-password-1")
