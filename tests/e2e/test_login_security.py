"""Login security in Debian Chromium against the real app (`streamlit run streamlit_app.py`) on a fresh database: forged
cookies show the login page (never a traceback), a logged-out cookie stays dead after an app restart while an open
session's cookie survives it, and a patient named like Markdown/HTML shows as typed (no live link, no image)."""

from __future__ import annotations

import jwt
import pytest

from tests.e2e import clinic_harness as ui

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ADMIN = ("Dr Rosa Marín", "rosa", "first-admin-pw-8")
EVIL = "[x](http://evil.example) ![t](http://evil.example/p.png) <img src=x>"
# what Streamlit's renderer would turn into links, emoji, icons or colours even with every character escaped
BARE = "see http://evil.example/a or www.evil.example, mail me@evil.example :smile: :material/home: :red[alarm] $x^2$"


def login_cookie(page) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == "psya_login")


def open_with_cookie(browser, url: str, value: str):
    context = browser.new_context()
    context.add_cookies([{"name": "psya_login", "value": value, "url": url}])
    page = context.new_page()
    ui.goto(page, url)
    return page


def shows_login_page(page) -> bool:
    page.get_by_role("button", name="Log in").wait_for(timeout=30_000)
    return page.get_by_test_id("stException").count() == 0 and "Traceback" not in page.content()


def shows_patients(page) -> bool:
    page.get_by_role("heading", name="Patients").wait_for(timeout=30_000)
    page.get_by_role("button", name="Log out").wait_for(timeout=30_000)
    return page.get_by_test_id("stException").count() == 0


def test_forged_and_revoked_cookies_show_the_login_page_even_after_a_restart(app, app_env, browser, tmp_path):
    name, username, password = ADMIN
    first = browser.new_context().new_page()
    ui.first_run_setup(first, app.url, name, username, password)
    logged_out_cookie = login_cookie(first)
    first.get_by_role("button", name="Log out").click()
    first.get_by_text("You have logged out.").wait_for(timeout=30_000)

    second = browser.new_context().new_page()
    ui.log_in(second, app.url, username, password)
    open_cookie = login_cookie(second)

    claims = jwt.decode(open_cookie, options={"verify_signature": False})  # what an attacker can read of it
    forged = {
        "alg none": jwt.encode(claims, None, algorithm="none"),
        "another algorithm": jwt.encode(claims, "guessed-key-" * 6, algorithm="HS512"),
        "another key": jwt.encode(claims, "guessed-key-" * 6, algorithm="HS256"),
        "garbage": "definitely.not.a-token",
    }
    for label, value in forged.items():
        assert shows_login_page(open_with_cookie(browser, app.url, value)), label
    assert shows_login_page(open_with_cookie(browser, app.url, logged_out_cookie))

    app.stop()  # an app restart: a new process on another port, the same database and cookie key
    restarted = ui.AppProcess.start(app_env, tmp_path / "restarted")
    try:
        assert shows_login_page(open_with_cookie(browser, restarted.url, logged_out_cookie))
        assert shows_patients(open_with_cookie(browser, restarted.url, open_cookie))
        assert shows_login_page(open_with_cookie(browser, restarted.url, forged["alg none"]))
    except Exception:
        print(restarted.log_tail())
        raise
    finally:
        restarted.stop()


def visible(locator) -> str:
    return locator.inner_text(timeout=30_000).replace("\u2060", "").strip()  # WORD JOINER: zero-width, invisible


def assert_no_live_markup(page, where: str) -> None:
    links = page.locator('a[href*="evil.example"]')
    assert links.count() == 0, (where, [links.nth(i).evaluate("a => a.parentElement.outerHTML") for i in range(links.count())])
    assert page.locator('img[src*="evil.example"], img[src="x"]').count() == 0, where
    assert "😄" not in page.inner_text("body"), where


def test_a_patient_named_like_markup_shows_as_typed_with_no_link_or_image(clinic_app, clinic_user, browser):
    app = clinic_app  # the shared app: this clinician's patients list holds only what this test makes
    page = browser.new_context(viewport={"width": 1400, "height": 1200}).new_page()
    ui.log_in(page, app.url, clinic_user.username, clinic_user.password)
    ui.goto(page, f"{app.url}/patients")
    full_name = page.get_by_role("textbox", name="Full name")
    try:  # the "New patient" expander starts open when there are no patients
        full_name.wait_for(state="visible", timeout=10_000)
    except Exception:
        page.get_by_text("New patient").click()
    full_name.fill(EVIL)
    page.get_by_role("textbox", name="Diagnosis").fill(BARE)
    page.get_by_role("button", name="Create patient").click()
    page.wait_for_url("**/patient?id=*", timeout=30_000)
    ui.wait_for_app_idle(page)
    assert visible(page.locator("h1").first) == EVIL  # the title reads exactly what was typed
    assert_no_live_markup(page, "patient")
    ui.goto(page, f"{app.url}/patients")
    diagnosis = page.get_by_test_id("stText").filter(has_text="evil.example").first  # the list's plain-text column
    diagnosis.wait_for(timeout=30_000)
    assert visible(diagnosis).endswith(BARE)
    assert visible(page.get_by_test_id("stPageLink").filter(has_text="evil.example").first).splitlines()[-1] == EVIL  # after its icon
    assert_no_live_markup(page, "patients")
