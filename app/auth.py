"""Clinician accounts and login rules, without Streamlit: bcrypt hashing (the same `$2b$` hashes streamlit-authenticator's
`Hasher` makes and checks; bcrypt is called directly so this module, the demo loader and the tests need no Streamlit), the
first-admin setup on an empty database, lock-out after repeated failures, and the cookie signing key.

The Streamlit side (forms, the signed re-login cookie) is `app.session_auth`. Accounts live in the store, so lock-out
state is shared by every app process and survives restarts (streamlit-authenticator's own failure counter is in memory
only, which is why the login form is ours and only hashing and the cookie are the library's).
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import bcrypt

from settings import Settings
from store.api import Store
from store.errors import InvalidInput
from store.models import Clinician, Role

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 128  # bcrypt ignores bytes after 72; a sane cap keeps hashing time bounded
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{2,39}$")
COOKIE_KEY_FILE = "cookie_key"
WRONG_CREDENTIALS = "Wrong username or password."
# Compared against when the username is unknown, so a wrong username costs the same bcrypt time as a wrong password
# (no timing oracle for which usernames exist).
_DUMMY_HASH = bcrypt.hashpw(secrets.token_urlsafe(16).encode(), bcrypt.gensalt()).decode()


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()


def check_password(password: str, password_hash: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode(), password_hash.encode())
    except ValueError:  # not a bcrypt hash (e.g. an account whose hash was blanked): never a match
        return False


def normalize_username(username: str) -> str:
    # streamlit-authenticator lower-cases usernames; doing the same everywhere keeps cookie re-login consistent.
    return username.strip().lower()


def password_problems(password: str, confirmation: str | None = None) -> list[str]:
    """Why a new password is refused (empty list: acceptable)."""
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(f"The password must have at most {MAX_PASSWORD_LENGTH} characters.")
    if password != password.strip():
        problems.append("The password must not begin or end with spaces.")
    if password and (password.isdigit() or password.isalpha()):
        problems.append("The password must mix letters with digits or symbols.")
    if confirmation is not None and password != confirmation:
        problems.append("The two passwords differ.")
    return problems


def username_problems(username: str) -> list[str]:
    if not USERNAME_PATTERN.match(normalize_username(username)):
        return ["The username must be 3-40 characters: letters, digits, '.', '_' or '-', starting with a letter or digit."]
    return []


def create_clinician(store: Store, username: str, display_name: str, password: str, confirmation: str, role: Role) -> Clinician:
    """Validate and create an account (system store for the first admin; an admin's store afterwards).
    Raises InvalidInput with every problem in the message."""
    problems = username_problems(username) + password_problems(password, confirmation)
    if not display_name.strip():
        problems.append("Please give the clinician's name.")
    if problems:
        raise InvalidInput(" ".join(problems))
    if store.get_clinician_by_username(normalize_username(username)) is not None:
        raise InvalidInput(f"The username {normalize_username(username)!r} is taken.")
    return store.create_clinician(normalize_username(username), display_name.strip(), hash_password(password), role)


def create_first_admin(store: Store, username: str, display_name: str, password: str, confirmation: str) -> Clinician:
    """Only on an empty database: the first account is an admin. Refused once any clinician exists, so the setup form
    cannot be replayed to take over an installed app."""
    if store.count_clinicians() > 0:
        raise InvalidInput("The first clinician already exists; please log in.")
    return create_clinician(store, username, display_name, password, confirmation, "admin")


# --- login and lock-out ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginResult:
    clinician: Clinician | None
    message: str = ""
    locked_until: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.clinician is not None


def locked_message(until: datetime) -> str:
    return f"Too many failed attempts: this account is locked until {until.astimezone(timezone.utc):%H:%M} UTC."


def is_locked(clinician: Clinician, now: datetime) -> bool:
    return clinician.locked_until is not None and clinician.locked_until > now


def lock_after_failure(clinician: Clinician, settings: Settings, now: datetime) -> datetime | None:
    """The lock time to set after one more failure, or None while under the limit. A lock that has run out starts a
    fresh count, so one mistake after a lock-out does not lock the account again at once."""
    previous = 0 if clinician.locked_until is not None and clinician.locked_until <= now else clinician.failed_logins
    if previous + 1 >= settings.max_login_failures:
        return now + timedelta(minutes=settings.lockout_minutes)
    return None


def attempt_login(store: Store, settings: Settings, username: str, password: str, now: datetime | None = None) -> LoginResult:
    """Check a username and password against the store (system actor). Every outcome is recorded in the store, which
    keeps the failure counter and audits it."""
    now = now or datetime.now(timezone.utc)
    try:
        clinician = store.get_clinician_by_username(normalize_username(username)) if username.strip() else None
    except InvalidInput:  # e.g. a NUL character or an overlong name: no such account
        clinician = None
    if clinician is None:
        check_password(password, _DUMMY_HASH)
        try:
            store.record_login_result(normalize_username(username), False)  # audited: attempts on unknown names too
        except InvalidInput:
            pass  # e.g. an overlong name: nothing to record
        return LoginResult(None, WRONG_CREDENTIALS)
    if is_locked(clinician, now):
        return LoginResult(None, locked_message(clinician.locked_until), clinician.locked_until)
    if password and check_password(password, clinician.password_hash):
        store.record_login_result(clinician.username, True)
        return LoginResult(clinician)
    locked_until = lock_after_failure(clinician, settings, now)
    store.record_login_result(clinician.username, False, locked_until)
    if locked_until is not None:
        return LoginResult(None, locked_message(locked_until), locked_until)
    return LoginResult(None, WRONG_CREDENTIALS)


def credentials_for_authenticator(clinicians: list[Clinician]) -> dict[str, Any]:
    """streamlit-authenticator's credentials dict, built from the store's accounts (passwords are bcrypt hashes already)."""
    return {
        "usernames": {
            c.username: {
                "name": c.display_name,
                "password": c.password_hash,
                "roles": [c.role],
                "failed_login_attempts": c.failed_logins,
                "logged_in": False,
            }
            for c in clinicians
        }
    }


# --- the cookie signing key ----------------------------------------------------------------------------------------------


def cookie_key(settings: Settings) -> str:
    """`settings.cookie_key` (COOKIE_KEY) when set; otherwise a random key generated once and kept (mode 0600) in
    `<data_dir>/cookie_key`, so logins survive restarts without anybody choosing a secret."""
    if settings.cookie_key:
        return settings.cookie_key
    path = Path(settings.data_dir) / COOKIE_KEY_FILE
    if path.is_file():
        key = path.read_text().strip()
        if key:
            return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # O_EXCL: when two app processes race, one writes and the other reads the winner's key.
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key)
    return key
