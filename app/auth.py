"""Clinician accounts and login rules, without Streamlit: bcrypt hashing (the same `$2b$` hashes streamlit-authenticator's
`Hasher` makes and checks), the first-admin setup on an empty database, the login throttle, password changes and resets,
deactivation, and the cookie signing key.

The Streamlit side (forms, the signed session cookie) is `app.session_auth`. Throttle counts and login sessions live in
the database and are decided there atomically, so they hold across every app process and survive restarts.

Login answers are deliberately uniform: an unknown username, a deactivated account and a wrong password read the same
message and cost the same one bcrypt check; a throttled attempt reads the same "please wait" whether the name exists or not
(throttling is keyed on the typed name, not on an account).
"""

from __future__ import annotations

import os
import math
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
import bcrypt

from settings import Settings
from store.api import LoginThrottle, Store
from store import validation as check
from store.errors import InvalidInput
from store.models import Clinician, Role

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 128
MAX_PASSWORD_BYTES = 72  # bcrypt looks at no more than 72 bytes of UTF-8 (bcrypt >= 5 refuses longer ones outright)
BCRYPT_ROUNDS = 12
# The throttle key for typed names that cannot be any account's (NUL, too long, invalid characters): never a valid
# username (spaces and parentheses), so such attempts share one key and slow down nobody real.
INVALID_USERNAME_KEY = "(invalid username)"
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{2,39}$")
COOKIE_KEY_FILE = "cookie_key"
WRONG_CREDENTIALS = "Wrong username or password."
# Compared against when the username is unknown, so a wrong username costs the same bcrypt time as a wrong password
# (no timing oracle for which usernames exist).
_DUMMY_HASH = bcrypt.hashpw(secrets.token_urlsafe(16).encode(), bcrypt.gensalt(BCRYPT_ROUNDS)).decode()


def hash_password(password: str) -> str:
    """bcrypt hash of a password that `password_problems` accepted (InvalidInput for one bcrypt cannot take)."""
    if problems := _encoding_problems(password):
        raise InvalidInput(" ".join(problems))
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_ROUNDS)).decode()


def check_password(password: str, password_hash: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode(), password_hash.encode())
    except ValueError:  # not a bcrypt hash, over 72 bytes, or not encodable (lone surrogate): never a match
        return False


def _encoding_problems(password: str) -> list[str]:
    try:
        size = len(password.encode())
    except UnicodeEncodeError:
        return ["The password contains a character that cannot be stored (a lone UTF-16 surrogate)."]
    if size > MAX_PASSWORD_BYTES:
        return [f"The password is {size} bytes long in UTF-8; at most {MAX_PASSWORD_BYTES} bytes work with bcrypt "
                "(letters with accents take 2 bytes, emoji 4). Please choose a shorter one."]
    return []


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
    if len(password) <= MAX_PASSWORD_LENGTH:
        problems += _encoding_problems(password)
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


# --- login and the throttle -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginResult:
    clinician: Clinician | None
    message: str = ""
    retry_after: timedelta | None = None  # set when the attempt was throttled (the password was not checked)

    @property
    def ok(self) -> bool:
        return self.clinician is not None


def login_throttle(settings: Settings) -> LoginThrottle:
    return LoginThrottle(
        free_failures=settings.max_login_failures,
        first_delay=timedelta(seconds=settings.login_delay_seconds),
        account_max_delay=timedelta(seconds=settings.account_delay_max_seconds),
        address_max_delay=timedelta(minutes=settings.lockout_minutes),
    )


def throttled_message(wait: timedelta) -> str:
    seconds = max(1, math.ceil(wait.total_seconds()))
    amount = f"{seconds} seconds" if seconds < 120 else f"{math.ceil(seconds / 60)} minutes"
    return f"Too many failed attempts. Please wait {amount}, then try again."


def throttle_key(username: str) -> str:
    """The name attempts are counted under: the normalised username, or one shared key for names no account can have."""
    name = normalize_username(username)
    if not name or len(name) > 64 or "\x00" in name or check.has_lone_surrogate(name):
        return INVALID_USERNAME_KEY
    return name


def attempt_login(store: Store, settings: Settings, username: str, password: str, address: str | None = None) -> LoginResult:
    """Check a username and password against the store (system actor). The database first decides, atomically, whether
    this name and client address may try now; every checked attempt is audited."""
    key = throttle_key(username)
    wait = store.begin_login_attempt(key, address, login_throttle(settings))
    if wait > timedelta(0):
        return LoginResult(None, throttled_message(wait), wait)
    clinician = store.get_clinician_by_username(key) if key != INVALID_USERNAME_KEY else None
    if clinician is None or not clinician.active:
        check_password(password, _DUMMY_HASH)  # the same bcrypt time as a real account's wrong password
        ok = False
    else:
        ok = bool(password) and check_password(password, clinician.password_hash)
    store.record_login_result(key, ok, address)
    return LoginResult(clinician) if ok else LoginResult(None, WRONG_CREDENTIALS)


# --- account care: own password, admin reset, deactivation, unlock -----------------------------------------------------


def change_own_password(store: Store, clinician: Clinician, current: str, new: str, confirmation: str,
                        keep_session_token: str | None = None) -> None:
    """A clinician changes their own password (system store). Their other login sessions end; this one stays."""
    account = store.get_clinician_by_username(clinician.username)
    if account is None or not check_password(current, account.password_hash):
        raise InvalidInput("The current password is wrong.")
    if problems := password_problems(new, confirmation):
        raise InvalidInput(" ".join(problems))
    store.set_password_hash(account.id, hash_password(new))
    store.revoke_login_sessions(account.id, keep_token=keep_session_token)


def reset_password(store: Store, clinician_id: uuid.UUID, new: str, confirmation: str, keep_session_token: str | None = None) -> None:
    """An admin sets a new password for a colleague (system store): every session of that account ends, and its throttle
    is cleared so the colleague can log in at once."""
    if problems := password_problems(new, confirmation):
        raise InvalidInput(" ".join(problems))
    store.set_password_hash(clinician_id, hash_password(new))
    store.revoke_login_sessions(clinician_id, keep_token=keep_session_token)


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
