"""Signing in and out in Streamlit: our own forms (throttle, accounts and sessions live in the store, `app.auth`) and a
signed session cookie.

The cookie is a JWT (HS256, signed with the cookie key) that carries only a random server-side session token; the
database decides on every script run whether that token still signs anybody in (`Store.resume_login_session`), so
logout, revocation, deactivation and the idle and absolute lifetimes hold across app restarts and across several app
processes. Anything else in the cookie slot (a forged token, `alg: none`, another algorithm, an expired or garbled value)
simply means "logged out".

The cookie is written by the browser-side cookie component (extra-streamlit-components, as streamlit-authenticator does):
Streamlit gives a script no way to send a Set-Cookie header, so the cookie cannot be HttpOnly; docs/security.md says what
that means and how a reverse proxy closes the gap.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone

import extra_streamlit_components as stx
import jwt
import streamlit as st

from app import auth, ui
from app.context import CLINICIAN_KEY
from settings import Settings
from store.api import Actor, Store
from store.errors import InvalidInput, StoreError
from store.models import Clinician

COOKIE_NAME = "psya_login"
COOKIE_ALGORITHM = "HS256"
MAX_COOKIE_LENGTH = 4096
_TOKEN_KEY = "_psya_session_token"  # session_state: this browser session's server-side login token
_COOKIE_VALUE_KEY = "_psya_cookie_value"
_COOKIE_PENDING_KEY = "_psya_set_cookie"  # "set" or "delete" until the browser has done it
_NOTICE_KEY = "_psya_login_notice"
# The cookie component's keys; their session_state values turn True once the browser has set / deleted the cookie.
_COMPONENT_KEY, _SET_KEY, _DELETE_KEY = "psya_cookies", "psya_cookie_set", "psya_cookie_delete"


# --- the cookie ------------------------------------------------------------------------------------------------------------


def encode_cookie(token: str, key: str, expires_at: datetime) -> str:
    return jwt.encode({"sid": token, "exp": int(expires_at.timestamp())}, key, algorithm=COOKIE_ALGORITHM)


def decode_cookie(value: object, key: str) -> str | None:
    """The session token in a cookie this app signed and that has not expired, else None. Never raises: a forged or
    broken cookie is just a visitor who is not logged in."""
    if not isinstance(value, str) or not value or len(value) > MAX_COOKIE_LENGTH:
        return None
    try:
        # algorithms pinned: a token saying alg "none" or any other algorithm is refused, not trusted
        payload = jwt.decode(value, key, algorithms=[COOKIE_ALGORITHM], options={"require": ["exp", "sid"]})
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        return None
    token = payload.get("sid") if isinstance(payload, dict) else None
    if not isinstance(token, str) or not 32 <= len(token) <= 200 or not token.isascii():
        return None
    return token


def client_address(settings: Settings) -> str | None:
    """The client's address for the per-address throttle: the last entry of CLIENT_ADDRESS_HEADER when configured (the
    one the trusted proxy appended), else the connection's address; None when Streamlit does not know it."""
    try:
        if settings.client_address_header:
            forwarded = st.context.headers.get(settings.client_address_header)
            address = forwarded.split(",")[-1].strip() if isinstance(forwarded, str) else None
        else:
            address = st.context.ip_address
    except (AttributeError, RuntimeError, KeyError):  # no request context (bare script runs)
        return None
    return address[:100] if isinstance(address, str) and address else None


def _cookie_manager(settings: Settings) -> stx.CookieManager:
    """The cookie component, rendered exactly once per run. It also keeps asking the browser to set (after login) or
    delete (after logout) the cookie until the component reports that it did: a component rendered just before a rerun,
    or removed by the next run before its frame loaded, would otherwise never act."""
    manager = stx.CookieManager(key=_COMPONENT_KEY)
    pending = st.session_state.get(_COOKIE_PENDING_KEY)
    if pending == "set" and st.session_state.get(_COOKIE_VALUE_KEY):
        manager.set(COOKIE_NAME, st.session_state[_COOKIE_VALUE_KEY], key=_SET_KEY,
                    expires_at=datetime.now(timezone.utc) + session_lifetime(settings),
                    secure=settings.public_base_url.startswith("https://"), same_site="strict")
        if st.session_state.get(_SET_KEY) is True:
            st.session_state.pop(_COOKIE_PENDING_KEY)
    elif pending == "delete":
        manager.cookies.setdefault(COOKIE_NAME, "")  # stx's delete() forgets its local copy and needs the entry
        manager.delete(COOKIE_NAME, key=_DELETE_KEY)
        if st.session_state.get(_DELETE_KEY) is True:
            st.session_state.pop(_COOKIE_PENDING_KEY)
    return manager


def idle_timeout(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.session_idle_minutes)


def session_lifetime(settings: Settings) -> timedelta:
    return timedelta(hours=settings.session_max_hours)


# --- who is signed in ------------------------------------------------------------------------------------------------------


def resolve_clinician(store: Store, settings: Settings) -> Clinician | None:
    """Who is signed in for this run: the token in session state, else the one in a valid signed cookie, in both cases
    only if the database still honours it (not logged out, revoked, idle or too old, account active). Re-read on every
    run, so a revocation in any app process signs this browser out at its next run."""
    _cookie_manager(settings)
    token = st.session_state.get(_TOKEN_KEY)
    if token is None:
        token = decode_cookie(_browser_cookie(), auth.cookie_key(settings))
    clinician: Clinician | None = None
    if token:
        try:
            clinician = store.resume_login_session(token, idle_timeout(settings), session_lifetime(settings))
        except InvalidInput:
            clinician = None
    if clinician is None:
        st.session_state.pop(_TOKEN_KEY, None)
        st.session_state.pop(CLINICIAN_KEY, None)
        return None
    st.session_state[_TOKEN_KEY] = token
    st.session_state[CLINICIAN_KEY] = clinician
    st.session_state.pop(_NOTICE_KEY, None)
    return clinician


def _browser_cookie() -> str | None:
    try:
        value = st.context.cookies.get(COOKIE_NAME)
    except (AttributeError, RuntimeError, KeyError):
        return None
    return value if isinstance(value, str) else None


def current_token() -> str | None:
    return st.session_state.get(_TOKEN_KEY)


def sidebar_account(store: Store, settings: Settings, clinician: Clinician) -> None:
    """The signed-in clinician's name, their password change, and the log-out button (which ends this run)."""
    with st.sidebar:
        st.caption(f"Signed in as **{ui.literal(clinician.display_name)}** ({clinician.role})")
        if st.button("Log out", key="logout_button", icon=":material/logout:"):
            log_out(store, clinician)
            st.rerun()  # a clean run as a signed-out visitor (the cookie component deletes the cookie there)
        with st.expander("Change my password", icon=":material/key:"):
            with st.form("change_password", clear_on_submit=True):
                current = st.text_input("Current password", type="password", autocomplete="current-password")
                new = st.text_input("New password", type="password", autocomplete="new-password",
                                    help=f"At least {auth.MIN_PASSWORD_LENGTH} characters, not only letters or digits")
                confirmation = st.text_input("Repeat the new password", type="password", autocomplete="new-password")
                change = st.form_submit_button("Change password")
            if change:
                try:
                    auth.change_own_password(store, clinician, current, new, confirmation, current_token())
                except (InvalidInput, StoreError) as error:
                    ui.show_error(error)
                else:
                    st.success("Password changed. Your other sessions have been signed out.")


def log_out(store: Store, clinician: Clinician) -> None:
    token = st.session_state.pop(_TOKEN_KEY, None)
    try:
        if token:
            store.end_login_session(token)
        store.as_actor(Actor.for_clinician(clinician)).audit("logout", "clinician", str(clinician.id))
    except StoreError:
        st.session_state[_NOTICE_KEY] = "You have logged out here; the database could not be told, so please log out again later."
    else:
        st.session_state[_NOTICE_KEY] = "You have logged out."
    st.session_state.pop(CLINICIAN_KEY, None)
    st.session_state.pop(_COOKIE_VALUE_KEY, None)
    st.session_state[_COOKIE_PENDING_KEY] = "delete"


def _sign_in(store: Store, settings: Settings, clinician: Clinician) -> None:
    token = secrets.token_urlsafe(32)
    store.open_login_session(clinician.id, token, client_address(settings))
    st.session_state[_TOKEN_KEY] = token
    st.session_state[CLINICIAN_KEY] = clinician
    st.session_state[_COOKIE_VALUE_KEY] = encode_cookie(
        token, auth.cookie_key(settings), datetime.now(timezone.utc) + session_lifetime(settings))
    st.session_state[_COOKIE_PENDING_KEY] = "set"
    for key in (_SET_KEY, _DELETE_KEY):  # the component's answers to an earlier login or logout in this tab
        st.session_state.pop(key, None)


# --- the forms (rendered by pages/login.py) ----------------------------------------------------------------------------


def first_run_setup_form(store: Store, settings: Settings) -> None:
    """On an empty database: create the first clinician, who is an administrator. There is no default password."""
    st.title("Welcome to Psychopathology Assistant")
    st.info("No clinician exists yet. Create the first (admin) clinician; they can add colleagues afterwards.")
    with st.form("first_admin"):
        display_name = st.text_input("Full name")
        username = st.text_input("Username", help="3-40 characters: letters, digits, '.', '_' or '-'")
        password = st.text_input("Password", type="password", help=f"At least {auth.MIN_PASSWORD_LENGTH} characters, not only letters or digits")
        confirmation = st.text_input("Repeat the password", type="password")
        submitted = st.form_submit_button("Create the first (admin) clinician", type="primary")
    if submitted:
        try:
            clinician = auth.create_first_admin(store, username, display_name, password, confirmation)
        except InvalidInput as error:
            ui.show_error(error)
            return
        _sign_in(store, settings, clinician)
        st.rerun()


def login_form(store: Store, settings: Settings) -> None:
    st.title("Psychopathology Assistant")
    # Kept until the next sign-in, not popped: the cookie component's own rerun right after a logout would wipe it.
    if notice := st.session_state.get(_NOTICE_KEY):
        st.success(notice)
    with st.form("login"):
        username = st.text_input("Username", autocomplete="username")
        password = st.text_input("Password", type="password", autocomplete="current-password")
        submitted = st.form_submit_button("Log in", type="primary")
    if submitted:
        result = auth.attempt_login(store, settings, username, password, client_address(settings))
        if not result.ok:
            st.error(result.message)
            return
        _sign_in(store, settings, result.clinician)
        st.rerun()
