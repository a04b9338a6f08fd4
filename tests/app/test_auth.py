"""app.auth: password rules, lock-out arithmetic, the cookie key, and login against a real store."""

from __future__ import annotations

import stat
from datetime import datetime, timedelta, timezone

import pytest

from app import auth
from settings import Settings
from store.errors import InvalidInput

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


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


def test_passwords_over_bcrypts_72_bytes_get_a_clear_message_not_a_crash(system_store):
    accented = "é" * 37 + "1"  # 38 characters, 75 bytes of UTF-8
    assert any("at most 72 bytes" in p for p in auth.password_problems(accented))
    with pytest.raises(InvalidInput, match="75 bytes long in UTF-8; at most 72 bytes"):
        auth.create_clinician(system_store, "longpw", "Dr Long", accented, accented, "clinician")
    with pytest.raises(InvalidInput, match="surrogate"):
        auth.create_clinician(system_store, "oddpw", "Dr Odd", "abcdefghij1\ud800", "abcdefghij1\ud800", "clinician")
    assert system_store.get_clinician_by_username("longpw") is None
    exactly = "a1" * 36  # 72 bytes: accepted and checked
    created = auth.create_clinician(system_store, "maxpw", "Dr Max", exactly, exactly, "clinician")
    assert auth.check_password(exactly, system_store.get_clinician_by_username("maxpw").password_hash)
    assert created.username == "maxpw"


def test_the_wait_message_is_the_same_for_every_name_and_rounds_up():
    assert auth.throttled_message(timedelta(seconds=0.2)) == "Too many failed attempts. Please wait 1 seconds, then try again."
    assert auth.throttled_message(timedelta(minutes=15)) == "Too many failed attempts. Please wait 15 minutes, then try again."


def test_names_no_account_can_have_share_one_throttle_key():
    assert auth.throttle_key("  Dr.Ana ") == "dr.ana"
    for odd in ("", "nobody\x00", "x" * 65, "\ud800abc"):
        assert auth.throttle_key(odd) == auth.INVALID_USERNAME_KEY


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


def test_login_against_the_store_counts_failures_and_resets_on_success(system_store, clinician):
    settings = Settings(max_login_failures=5)
    assert not auth.attempt_login(system_store, settings, clinician.username, "wrong").ok
    assert system_store.get_clinician_by_username(clinician.username).failed_logins == 1
    result = auth.attempt_login(system_store, settings, clinician.username.upper(), "correct horse battery staple")
    assert result.ok and result.clinician.id == clinician.id
    assert system_store.get_clinician_by_username(clinician.username).failed_logins == 0
    assert not auth.attempt_login(system_store, settings, "nobody\x00", "x").ok  # odd input: refused, not a crash
    assert not auth.attempt_login(system_store, settings, "nobody\ud800", "\udfff").ok


def counting_bcrypt_checks(monkeypatch) -> list[str]:
    """Record every bcrypt check (thread-safe: list.append), returning the list of hashes checked against."""
    import bcrypt

    checked: list[str] = []
    real = bcrypt.checkpw

    def checkpw(password: bytes, hashed: bytes) -> bool:
        checked.append(hashed.decode())
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", checkpw)
    return checked


def test_unknown_deactivated_and_known_names_cost_one_bcrypt_check_each_and_read_the_same(system_store, clinician, monkeypatch):
    checked = counting_bcrypt_checks(monkeypatch)
    settings = Settings()
    wrong = auth.attempt_login(system_store, settings, clinician.username, "not the password")
    unknown = auth.attempt_login(system_store, settings, "nobody-here", "not the password")
    other = auth.create_clinician(system_store, "gone", "Dr Gone", "gone-password-1", "gone-password-1", "clinician")
    system_store.set_clinician_active(other.id, False)
    deactivated = auth.attempt_login(system_store, settings, "gone", "gone-password-1")  # right password, no entry
    assert wrong.message == unknown.message == deactivated.message == auth.WRONG_CREDENTIALS
    assert len(checked) == 3
    # the stand-in hash for unknown names has the cost of a real account's hash, so the time is the same too
    assert checked[1].split("$")[2] == checked[2].split("$")[2] == f"{auth.BCRYPT_ROUNDS:02d}"
    assert auth.hash_password("a-long-enough-1").split("$")[2] == f"{auth.BCRYPT_ROUNDS:02d}"


def parallel_attempts(store, settings, names: list[str], password: str, address: str | None = None) -> list[auth.LoginResult]:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        return list(pool.map(lambda name: auth.attempt_login(store, settings, name, password, address), names))


@pytest.fixture
def wide_store(database_url):
    """A system store whose pool lets 16 attempts reach the database at once (the fixture's pool has 4)."""
    from store.postgres import PostgresStore

    store = PostgresStore.connect(database_url, max_size=16)
    yield store
    store.close()


THROTTLE = dict(max_login_failures=3, login_delay_seconds=600, account_delay_max_seconds=600, lockout_minutes=60)


def test_forty_parallel_wrong_passwords_are_throttled_atomically_in_the_database(wide_store, clinician, monkeypatch):
    checked = counting_bcrypt_checks(monkeypatch)
    settings = Settings(**THROTTLE)
    first = parallel_attempts(wide_store, settings, [clinician.username] * 40, "wrong password 1")
    # 3 free failures and the 4th, which starts the delay: exactly 4 passwords were checked, 36 told to wait
    assert len(checked) == 4
    assert sum(r.message == auth.WRONG_CREDENTIALS for r in first) == 4
    assert sum(r.retry_after is not None for r in first) == 36
    second = parallel_attempts(wide_store, settings, [clinician.username] * 40, "wrong password 1")
    assert len(checked) == 4 and all(r.retry_after is not None for r in second)
    right = auth.attempt_login(wide_store, settings, clinician.username, "correct horse battery staple")
    assert not right.ok and right.retry_after is not None and len(checked) == 4


def test_forty_parallel_guesses_at_different_names_from_one_address_are_throttled_by_the_address(wide_store, monkeypatch):
    checked = counting_bcrypt_checks(monkeypatch)
    settings = Settings(**THROTTLE)
    results = parallel_attempts(wide_store, settings, [f"guess-{i}" for i in range(40)], "password-1", "203.0.113.9")
    assert len(checked) == 4 and sum(r.retry_after is not None for r in results) == 36
    assert auth.attempt_login(wide_store, settings, "guess-x", "password-1", "198.51.100.7").retry_after is None


def test_a_stranger_only_delays_a_clinician_the_delays_grow_to_a_cap_and_an_admin_clears_them(system_store, clinician):
    import time

    settings = Settings(max_login_failures=1, login_delay_seconds=0.5, account_delay_max_seconds=2.0, lockout_minutes=60)
    delays = []
    for _ in range(5):  # the stranger waits out each delay and tries again
        result = auth.attempt_login(system_store, settings, clinician.username, "stranger's guess 1")
        while result.retry_after is not None:
            time.sleep(result.retry_after.total_seconds() + 0.05)
            result = auth.attempt_login(system_store, settings, clinician.username, "stranger's guess 1")
        assert result.message == auth.WRONG_CREDENTIALS
        account = system_store.get_clinician_by_username(clinician.username)
        if account.locked_until is not None:
            delays.append((account.locked_until - datetime.now(timezone.utc)).total_seconds())  # <= the delay just set
    # 0.5 s, doubling, capped at 2 s (each measured a moment after it was set, hence the open lower bounds)
    assert len(delays) == 4
    assert delays[0] <= 0.5 < delays[1] <= 1.0 < delays[2] <= 2.0 and 1.0 < delays[3] <= 2.0
    assert auth.attempt_login(system_store, settings, clinician.username, "correct horse battery staple").retry_after is not None
    system_store.reset_login_throttle(clinician.username)  # the admin's "Clear login delay"
    assert auth.attempt_login(system_store, settings, clinician.username, "correct horse battery staple").ok


def test_changing_the_own_password_needs_the_current_one_and_ends_the_other_sessions(system_store, clinician):
    from datetime import timedelta as span

    system_store.open_login_session(clinician.id, "this-browser-" + "x" * 40)
    system_store.open_login_session(clinician.id, "other-browser-" + "y" * 40)
    with pytest.raises(InvalidInput, match="current password is wrong"):
        auth.change_own_password(system_store, clinician, "guess", "new-password-2", "new-password-2")
    auth.change_own_password(system_store, clinician, "correct horse battery staple", "new-password-2", "new-password-2",
                             keep_session_token="this-browser-" + "x" * 40)
    assert not auth.attempt_login(system_store, Settings(), clinician.username, "correct horse battery staple").ok
    assert auth.attempt_login(system_store, Settings(), clinician.username, "new-password-2").ok
    assert system_store.resume_login_session("this-browser-" + "x" * 40, span(hours=1), span(hours=1)) is not None
    assert system_store.resume_login_session("other-browser-" + "y" * 40, span(hours=1), span(hours=1)) is None


def test_the_first_admin_can_be_created_only_once(system_store):
    admin = auth.create_first_admin(system_store, "Boss", "Dr Boss", "boss-password-1", "boss-password-1")
    assert admin.username == "boss" and admin.role == "admin"
    with pytest.raises(InvalidInput, match="already exists"):
        auth.create_first_admin(system_store, "other", "Dr Other", "boss-password-1", "boss-password-1")
