"""Access: first-run setup, login, lock-out, logout, and which pages exist for whom (the real app script, real Postgres)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from app import ui
from tests.app.conftest import PASSWORD, log_in, visible_text


def texts(at) -> str:
    """What the reader sees in the page's Markdown elements."""
    return "\n".join(visible_text(e.value) for e in (*at.markdown, *at.error, *at.success, *at.info, *at.warning, *at.title, *at.caption))


def fill(at, **values: str) -> None:
    inputs = {ti.label: ti for ti in at.text_input}
    for label, value in values.items():
        inputs[label].input(value)


def test_an_empty_database_asks_for_the_first_admin_and_has_no_default_password(new_app, system_store):
    at = new_app().run()
    assert not at.exception
    assert "No clinician exists yet" in texts(at)
    assert at.button[0].label == "Create the first (admin) clinician"
    assert [t.label for t in at.text_input] == ["Full name", "Username", "Password", "Repeat the password"]
    # Nothing to log in with: the only way in is creating the first account.
    assert system_store.count_clinicians() == 0


def test_creating_the_first_admin_signs_them_in_with_a_bcrypt_hash(new_app, system_store):
    at = new_app().run()
    fill(at, **{"Full name": "Dr Ada Admin", "Username": "Ada", "Password": "s3cret-enough!", "Repeat the password": "s3cret-enough!"})
    at.button[0].click().run()
    assert not at.exception
    assert at.title[0].value == "Patients"
    admin = system_store.get_clinician_by_username("ada")
    assert admin is not None and admin.role == "admin"
    assert admin.password_hash.startswith("$2") and "s3cret" not in admin.password_hash
    assert [b.label for b in at.sidebar.button] == ["Log out", "Change password"]


def test_first_admin_form_rejects_weak_or_mismatched_passwords(new_app, system_store):
    at = new_app().run()
    fill(at, **{"Full name": "Dr A", "Username": "ada", "Password": "short", "Repeat the password": "other"})
    at.button[0].click().run()
    assert "at least 10 characters" in texts(at) and "differ" in texts(at)
    assert system_store.count_clinicians() == 0


def test_setup_form_is_gone_once_a_clinician_exists(new_app, clinician):
    at = new_app().run()
    assert "No clinician exists yet" not in texts(at)
    assert at.button[0].label == "Log in"


def test_login_with_the_right_password_opens_the_patients_page(new_app, clinician):
    at = log_in(new_app(), clinician.username)
    assert not at.exception
    assert at.title[0].value == "Patients"
    assert at.sidebar.caption[0].value == f"Signed in as **{ui.literal(clinician.display_name)}** (clinician)"


def test_a_wrong_password_is_refused_with_the_same_message_as_an_unknown_user(new_app, clinician):
    wrong = log_in(new_app(), clinician.username, "not the password")
    unknown = log_in(new_app(), "nobody-here", PASSWORD)
    assert wrong.error[0].value == unknown.error[0].value == "Wrong username or password."
    assert wrong.button[0].label == "Log in"


def test_repeated_failures_delay_known_and_unknown_names_alike_even_for_the_right_password(new_app, clinician, system_store, monkeypatch):
    monkeypatch.setenv("MAX_LOGIN_FAILURES", "3")
    monkeypatch.setenv("LOGIN_DELAY_SECONDS", "600")
    monkeypatch.setenv("ACCOUNT_DELAY_MAX_SECONDS", "600")
    for name in (clinician.username, "nobody-here"):
        # 3 free failures, and the 4th is still checked (it starts the delay)
        for _ in range(4):
            assert log_in(new_app(), name, "wrong password 1").error[0].value == "Wrong username or password."
        right = log_in(new_app(), name, PASSWORD)
        assert right.error[0].value == "Too many failed attempts. Please wait 10 minutes, then try again."
        assert right.button[0].label == "Log in"
    delayed = system_store.get_clinician_by_username(clinician.username)
    assert delayed.failed_logins == 4 and delayed.locked_until > datetime.now(timezone.utc)


def test_logout_returns_to_the_login_form(signed_in_app):
    at = signed_in_app
    at.sidebar.button[0].click().run()
    assert not at.exception
    assert "You have logged out." in texts(at)
    assert at.button[0].label == "Log in"


def test_signed_out_visitors_reach_only_login_and_join(new_app, clinician):
    at = new_app().run()
    with pytest.raises(ValueError):
        at.switch_page("pages/patients.py")
    at.switch_page("pages/join.py").run()  # the patient's page needs no login
    assert "Log in" not in [b.label for b in at.button]


def test_only_admins_get_the_audit_and_clinician_pages(new_app, clinician, system_store):
    at = log_in(new_app(), clinician.username)
    with pytest.raises(ValueError):
        at.switch_page("pages/audit.py")
    import bcrypt

    system_store.create_clinician("boss", "Dr Boss", bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode(), "admin")
    admin = log_in(new_app(), "boss")
    admin.switch_page("pages/audit.py").run()
    assert not admin.exception
    assert admin.title[0].value == "Audit log"
    assert "login" in set(admin.dataframe[0].value["Action"])


def test_an_admin_adds_a_clinician_who_can_then_log_in(new_app, system_store):
    import bcrypt

    system_store.create_clinician("boss", "Dr Boss", bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode(), "admin")
    admin = log_in(new_app(), "boss")
    admin.switch_page("pages/clinicians.py").run()
    fill(admin, **{"Full name": "Dr New", "Username": "newdoc", "Initial password": "another-pass-1", "Repeat the password": "another-pass-1"})
    admin.button[0].click().run()
    assert not admin.exception
    assert "Added Dr New (clinician)." in texts(admin)
    assert log_in(new_app(), "newdoc", "another-pass-1").title[0].value == "Patients"
