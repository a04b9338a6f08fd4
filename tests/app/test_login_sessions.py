"""Login sessions through the real app script (AppTest, real PostgreSQL): the signed cookie carries only a server-side
session token, forged cookies mean "logged out", logout and revocation hold after a restart and in every process, idle
sessions end; admins unlock, reset and deactivate accounts; clinicians change their own password.

AppTest cannot send browser cookies, so these tests hand the app its cookie through `session_auth._browser_cookie` (what
Streamlit's st.context.cookies would return); tests/e2e/test_login_security.py does the same with a real browser."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import jwt
import pytest

from app import auth, context, session_auth
from settings import Settings
from tests.app.conftest import PASSWORD, log_in, page_text, visible_text


def button(at, label: str):
    return next(b for b in at.button if b.label == label)


def signed_in(at) -> bool:
    return not at.exception and bool(at.sidebar.button) and at.sidebar.button[0].label == "Log out"


def shows_login(at) -> bool:
    return not at.exception and [b.label for b in at.button][:1] == ["Log in"] and not at.sidebar.button


def with_cookie(new_app, monkeypatch, value):
    monkeypatch.setattr(session_auth, "_browser_cookie", lambda: value)
    return new_app().run()


def restart_app() -> None:
    """What an app restart does to the app's state: the process-wide store (and its pool) is gone."""
    context._cached_store.clear()


def copied_cookie(at) -> str:
    """The cookie this AppTest's browser would hold after logging in."""
    token = at.session_state[session_auth._TOKEN_KEY]
    return session_auth.encode_cookie(token, auth.cookie_key(Settings.load()), datetime.now(timezone.utc) + timedelta(hours=1))


def test_a_cookie_of_an_open_session_signs_in_after_a_restart_and_a_logout_kills_it_everywhere(new_app, clinician, monkeypatch):
    browser = log_in(new_app(), clinician.username)
    cookie = copied_cookie(browser)
    restart_app()
    other_tab = with_cookie(new_app, monkeypatch, cookie)
    assert signed_in(other_tab)
    browser.sidebar.button[0].click().run()  # log out in the first tab
    assert shows_login(browser)
    assert shows_login(other_tab.run())  # the other tab, at its next run
    restart_app()
    assert shows_login(with_cookie(new_app, monkeypatch, cookie))  # the copied cookie, after a restart


def forged_cookies(token: str, key: str) -> dict[str, str]:
    exp = int((datetime.now(timezone.utc) + timedelta(hours=1)).timestamp())
    return {
        "garbage": "not a cookie at all",
        "three dots": "a.b.c",
        "alg none": jwt.encode({"sid": token, "exp": exp}, None, algorithm="none"),
        "another algorithm": jwt.encode({"sid": token, "exp": exp}, key, algorithm="HS512"),
        "another key": jwt.encode({"sid": token, "exp": exp}, "not-the-cookie-key-" * 3, algorithm="HS256"),
        "expired": jwt.encode({"sid": token, "exp": exp - 7200}, key, algorithm="HS256"),
        "no expiry": jwt.encode({"sid": token}, key, algorithm="HS256"),
        "sid not text": jwt.encode({"sid": 12345, "exp": exp}, key, algorithm="HS256"),
        "old streamlit-authenticator cookie": jwt.encode({"username": "x", "exp_date": exp}, key, algorithm="HS256"),
        "huge": "x" * 100_000,
    }


def test_forged_cookies_mean_logged_out_never_a_traceback(new_app, clinician, monkeypatch):
    browser = log_in(new_app(), clinician.username)
    token = browser.session_state[session_auth._TOKEN_KEY]  # a live session: only the signature stands in the way
    key = auth.cookie_key(Settings.load())
    for name, cookie in forged_cookies(token, key).items():
        assert session_auth.decode_cookie(cookie, key) is None, name
        assert shows_login(with_cookie(new_app, monkeypatch, cookie)), name
    assert session_auth.decode_cookie(copied_cookie(browser), key) == token  # the genuine one still works


def test_an_idle_session_ends(new_app, clinician, monkeypatch):
    at = log_in(new_app(), clinician.username)
    assert signed_in(at)
    # The idle limit drops to 6 ms only after signing in, so however slow this machine is, signing in cannot already
    # count as idle, and the pause below is always longer than the limit.
    monkeypatch.setenv("SESSION_IDLE_MINUTES", "0.0001")
    time.sleep(0.2)
    assert shows_login(at.run())


@pytest.fixture
def admin(new_app, system_store):
    system_store.create_clinician("boss", "Dr Boss", auth.hash_password("boss-password-1"), "admin")
    at = log_in(new_app(), "boss", "boss-password-1")
    at.switch_page("pages/clinicians.py").run()
    assert not at.exception
    return at


def manage(admin, clinician):
    admin.run()  # the list as it is now
    admin.selectbox(key="manage_clinician").set_value(clinician.id).run()
    return admin


def test_an_admin_deactivates_an_account_which_is_signed_out_at_once_and_cannot_log_in(new_app, admin, clinician):
    theirs = log_in(new_app(), clinician.username)
    assert signed_in(theirs)
    button(manage(admin, clinician), "Deactivate account").click().run()
    assert f"Deactivated {clinician.display_name}." in page_text(admin)
    assert shows_login(theirs.run())
    assert log_in(new_app(), clinician.username).error[0].value == "Wrong username or password."
    button(manage(admin, clinician), "Reactivate account").click().run()
    assert signed_in(log_in(new_app(), clinician.username))


def test_an_admin_clears_a_login_delay_a_stranger_caused(new_app, admin, clinician, monkeypatch):
    monkeypatch.setenv("MAX_LOGIN_FAILURES", "1")
    monkeypatch.setenv("LOGIN_DELAY_SECONDS", "600")
    for _ in range(2):
        log_in(new_app(), clinician.username, "a stranger's guess 1")
    assert "Too many failed attempts" in log_in(new_app(), clinician.username).error[0].value
    admin.run()
    button(manage(admin, clinician), "Clear login delay").click().run()
    assert signed_in(log_in(new_app(), clinician.username))


def test_an_admin_resets_a_password_which_ends_the_accounts_sessions(new_app, admin, clinician):
    theirs = log_in(new_app(), clinician.username)
    manage(admin, clinician)
    inputs = {ti.label: ti for ti in admin.text_input}
    inputs["Their new password"].input("fresh-password-9")
    inputs["Repeat their new password"].input("fresh-password-9")
    button(admin, "Set new password").click().run()
    assert not admin.exception and "Set a new password for" in page_text(admin)
    assert shows_login(theirs.run())
    assert log_in(new_app(), clinician.username).error[0].value == "Wrong username or password."
    assert signed_in(log_in(new_app(), clinician.username, "fresh-password-9"))


def test_a_clinician_changes_their_own_password_and_stays_signed_in(new_app, clinician):
    elsewhere = log_in(new_app(), clinician.username)
    at = log_in(new_app(), clinician.username)

    def change(current: str, new: str, repeat: str):
        inputs = {ti.label: ti for ti in at.sidebar.text_input}
        inputs["Current password"].input(current)
        inputs["New password"].input(new)
        inputs["Repeat the new password"].input(repeat)
        next(b for b in at.sidebar.button if b.label == "Change password").click().run()

    change("wrong", "my-new-password-3", "my-new-password-3")
    assert "The current password is wrong." in [visible_text(e.value) for e in at.sidebar.error]
    change(PASSWORD, "my-new-password-3", "my-new-password-3")
    assert "Password changed. Your other sessions have been signed out." in [s.value for s in at.sidebar.success]
    assert signed_in(at.run()) and shows_login(elsewhere.run())
    assert signed_in(log_in(new_app(), clinician.username, "my-new-password-3"))


def test_passwords_over_72_bytes_get_a_clear_message_on_the_clinicians_page(admin, system_store):
    inputs = {ti.label: ti for ti in admin.text_input}
    long_password = "ü" * 40 + "1"
    for label, value in {"Full name": "Dr Long", "Username": "longpw", "Initial password": long_password,
                         "Repeat the password": long_password}.items():
        inputs[label].input(value)
    button(admin, "Add clinician").click().run()
    assert not admin.exception
    assert "at most 72 bytes work with bcrypt" in page_text(admin)
    assert system_store.get_clinician_by_username("longpw") is None
