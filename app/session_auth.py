"""Signing in and out in Streamlit: streamlit-authenticator for bcrypt checks and the signed re-login cookie (a JWT,
HS256 with the cookie key), our own forms so lock-out and accounts live in the store (`app.auth`).

Session state keys are streamlit-authenticator's (`authentication_status`, `username`, `name`, `roles`, `logout`) so its
cookie controller works unchanged, plus `CLINICIAN_KEY` for the run's Clinician.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

import streamlit as st
import streamlit_authenticator as stauth
from streamlit_authenticator.utilities import LoginError

from app import auth
from app.context import CLINICIAN_KEY
from settings import Settings
from store.api import Actor, Store
from store.errors import InvalidInput, StoreError
from store.models import Clinician

COOKIE_NAME = "psya_login"
COOKIE_EXPIRY_DAYS = 0.5  # a working day; after that the password is asked again
_AUTHENTICATOR_KEY = "_psya_authenticator"
_COOKIE_PENDING_KEY = "_psya_set_cookie"
_NOTICE_KEY = "_psya_login_notice"


def _authenticator(store: Store, settings: Settings) -> stauth.Authenticate:
    # Built once per script run from the store's accounts (so a new or removed clinician takes effect at once). Its
    # cookie manager is a component that must be created exactly once per run, hence the session_state slot.
    authenticator = stauth.Authenticate(
        auth.credentials_for_authenticator(store.list_clinicians()),
        cookie_name=COOKIE_NAME,
        cookie_key=auth.cookie_key(settings),
        cookie_expiry_days=COOKIE_EXPIRY_DAYS,
        auto_hash=False,
    )
    st.session_state[_AUTHENTICATOR_KEY] = authenticator
    return authenticator


def _forget_user() -> None:
    for key in ("name", "username", "authentication_status", "roles", "email"):
        st.session_state[key] = None
    st.session_state.pop(CLINICIAN_KEY, None)


def resolve_clinician(store: Store, settings: Settings) -> Clinician | None:
    """Who is signed in for this run: from session state, else from a valid signed cookie. Also handles the sidebar's
    log-out button and setting the cookie after a fresh login. The result is re-read from the store on every run, so a
    locked or removed account is signed out at once."""
    authenticator = _authenticator(store, settings)
    _sync_cookie(authenticator)

    clinician: Clinician | None = None
    username = st.session_state.get("username")
    if st.session_state.get("authentication_status") and username:
        clinician = store.get_clinician_by_username(username)
    else:
        token = authenticator.cookie_controller.get_cookie()
        if token and _revoked(token):
            token = None
        if token:
            try:
                authenticator.authentication_controller.login(token=token)
                clinician = store.get_clinician_by_username(token["username"])
            except LoginError:
                clinician = None  # the cookie names an account that no longer exists

    if clinician is None or auth.is_locked(clinician, datetime.now(timezone.utc)):
        if st.session_state.get("authentication_status"):
            _forget_user()
        st.session_state.pop(CLINICIAN_KEY, None)
        return None
    st.session_state[CLINICIAN_KEY] = clinician
    return clinician


@st.cache_resource
def _logged_out_at() -> dict[str, float]:
    """username -> when they last logged out (this process). Cookies issued before that are refused even if the browser
    kept them (a reload before the delete reached the browser, a copied cookie)."""
    return {}


def _revoked(token: dict) -> bool:
    issued_at = float(token.get("exp_date", 0)) - COOKIE_EXPIRY_DAYS * 86400
    return issued_at <= _logged_out_at().get(str(token.get("username")), float("-inf"))


def _sync_cookie(authenticator: stauth.Authenticate) -> None:
    """Set (after login) or delete (after logout) the browser's cookie, and keep asking on every run until the cookie
    component reports that the browser did it: a component rendered just before a rerun, or removed by the next run
    before its frame loaded, would otherwise never act (a reload right after logging in would ask for the password
    again, and worse, a reload right after logging out would log back in). streamlit-authenticator's cookie manager
    uses the component keys "set" and "delete"; their values turn True once the browser has done it."""
    if st.session_state.get(_COOKIE_PENDING_KEY) == "set":
        authenticator.cookie_controller.set_cookie()
        if st.session_state.get("set") is True:
            st.session_state.pop(_COOKIE_PENDING_KEY)
    elif st.session_state.get(_COOKIE_PENDING_KEY) == "delete":
        authenticator.cookie_controller.delete_cookie()
        if st.session_state.get("delete") is True:
            st.session_state.pop(_COOKIE_PENDING_KEY)


def sidebar_account(store: Store, clinician: Clinician) -> Clinician | None:
    """The signed-in clinician's name and the log-out button. Returns None when they just logged out."""
    with st.sidebar:
        st.caption(f"Signed in as **{clinician.display_name}** ({clinician.role})")
        if st.button("Log out", key="logout_button", icon=":material/logout:"):
            log_out(store, clinician)
            return None
    return clinician


def log_out(store: Store, clinician: Clinician) -> None:
    authenticator: stauth.Authenticate | None = st.session_state.get(_AUTHENTICATOR_KEY)
    try:
        store.as_actor(Actor.for_clinician(clinician)).audit("logout", "clinician", str(clinician.id))
    except StoreError:
        pass  # logging out must work even when the audit cannot be written
    _logged_out_at()[clinician.username] = time.time()
    if authenticator is not None:
        authenticator.authentication_controller.logout()  # sets `logout`, so the old cookie is not honoured again
    st.session_state[_COOKIE_PENDING_KEY] = "delete"
    if authenticator is not None:
        _sync_cookie(authenticator)
    _forget_user()
    st.session_state[_NOTICE_KEY] = "You have logged out."


def _sign_in(clinician: Clinician) -> None:
    st.session_state.update(
        authentication_status=True,
        username=clinician.username,
        name=clinician.display_name,
        roles=[clinician.role],
        logout=None,
    )
    st.session_state[CLINICIAN_KEY] = clinician
    st.session_state[_COOKIE_PENDING_KEY] = "set"


# --- the forms (rendered by pages/login.py) ----------------------------------------------------------------------------


def first_run_setup_form(store: Store) -> None:
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
            st.error(str(error))
            return
        _sign_in(clinician)
        st.rerun()


def login_form(store: Store, settings: Settings) -> None:
    st.title("Psychopathology Assistant")
    if notice := st.session_state.pop(_NOTICE_KEY, None):
        st.success(notice)
    with st.form("login"):
        username = st.text_input("Username", autocomplete="username")
        password = st.text_input("Password", type="password", autocomplete="current-password")
        submitted = st.form_submit_button("Log in", type="primary")
    if submitted:
        result = auth.attempt_login(store, settings, username, password)
        if not result.ok:
            st.error(result.message)
            return
        _sign_in(result.clinician)
        st.rerun()
