"""Every user text renders as plain text (real app script, AppTest, real PostgreSQL): a patient, note, record entry,
device or clinician name carrying Markdown or HTML shows exactly as typed, never as a live link, a tracking image, HTML,
a heading or a Streamlit colour/icon directive.

AppTest hands back the Markdown each element sends to the browser; `html_tags` renders it the way CommonMark does (as
Streamlit's renderer does) and tells which tags would appear. tests/e2e/test_login_security.py checks the same in Chromium.
"""

from __future__ import annotations

from datetime import date

from app import ui
from store.api import Actor
from tests.app.conftest import html_tags, log_in, open_page, page_text, visible_text
from tests.app.helpers import consenting_patient, device_session

EVIL = "[x](http://evil) ![t](http://evil/p.png) <img src=x>"
ALSO_EVIL = "# big :red[alarm] :material/warning: :smile: $x^2$ **bold** 1. list www.evil.example me@evil.example"
HARMLESS_TAGS = {"p", "br", "strong", "em", "code"}  # what the app's own wording uses


def markdown_elements(at):
    kinds = ("title", "header", "subheader", "markdown", "caption", "error", "warning", "info", "success")
    for kind in kinds:
        for element in getattr(at, kind):
            yield kind, element.value
    for link in at.get("page_link") or []:
        yield "page_link", link.label


def assert_all_literal(at) -> None:
    assert not at.exception, at.exception
    for kind, value in markdown_elements(at):
        if "<style>" in value:  # the cookie component's own CSS (unsafe_allow_html, not user text)
            continue
        assert html_tags(value) <= HARMLESS_TAGS, (kind, value)
        shown = visible_text(value)
        assert "evil" not in value or EVIL in shown or ALSO_EVIL in shown, (kind, value)  # whole, as typed


def test_the_helper_renders_markdown_and_html_as_typed():
    for text in (EVIL, ALSO_EVIL, "first\n  indented\n    four spaces (not code)\n- a dash", "&amp; \\ back`tick`"):
        assert visible_text(ui.literal(text)).replace("\u00a0", " ") == text.strip("\n")
        assert html_tags(ui.literal(text)) <= {"p", "br"}
    assert html_tags(EVIL) >= {"a", "img"}  # (the check itself sees links and images when they are there)
    # bare links, emoji and icons are matched by the renderer's plugins after escapes are resolved: a zero-width word
    # joiner breaks their patterns (tests/e2e/test_login_security.py shows the effect in Chromium)
    for pattern in ("http://", "www.", "me@", ":smile:", ":material/"):
        assert pattern not in ui.literal(ALSO_EVIL + " http://x").replace("\\", "")


def test_a_patient_named_like_markup_renders_literally_on_every_page(new_app, system_store, store_factory):
    clinician = system_store.create_clinician("ana", EVIL, "$2b$04$" + "x" * 53, "clinician")
    from app import auth

    system_store.set_password_hash(clinician.id, auth.hash_password("correct horse battery staple"))
    store = store_factory(Actor.for_clinician(clinician))
    patient = consenting_patient(store, EVIL, diagnosis=ALSO_EVIL)
    store.record_consent(patient.id, True, date.today(), EVIL)
    store.add_record_entry(patient.id, date.today(), "other", EVIL)
    session, _ = device_session(store, store_factory, patient, name="pi-" + "x")
    store.register_device(EVIL[:90], ALSO_EVIL)

    at = log_in(new_app(), "ana")
    assert_all_literal(at)  # the patients list (and the sidebar's "Signed in as")
    assert EVIL in page_text(at) and ALSO_EVIL in page_text(at)
    assert f"Signed in as {EVIL} (clinician)" in [visible_text(c.value) for c in at.sidebar.caption]
    for page, query in (("pages/patient.py", {"id": patient.id}), ("pages/sessions.py", {}), ("pages/devices.py", {}),
                        ("pages/live.py", {"session": session.id}), ("pages/live.py", {}),
                        ("pages/progress.py", {"patient": patient.id})):
        at = open_page(at, page, **query)
        assert_all_literal(at)
        assert "evil" in page_text(at), page
    store.end_session(session.id)
    at = open_page(at, "pages/review.py", session=session.id)
    assert_all_literal(at)
    assert EVIL in page_text(at)


def test_flash_messages_quoting_a_name_render_literally(new_app, signed_in_app):
    at = signed_in_app
    inputs = {ti.label: ti for ti in at.text_input}
    inputs["Full name"].input(EVIL)
    next(b for b in at.button if b.label == "Create patient").click().run()
    assert_all_literal(at)
    assert f"Created {EVIL}." in page_text(at)
    assert visible_text(at.title[0].value) == EVIL


def test_errors_shown_by_the_helper_render_literally_and_pages_use_only_it():
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    def script():
        from app import ui
        from store.errors import InvalidInput

        ui.show_error(InvalidInput("A patient named [x](http://evil) ![t](http://evil/p.png) <img src=x> exists."))

    at = AppTest.from_function(script).run()
    [error] = at.error
    assert html_tags(error.value) <= {"p", "br"}
    assert visible_text(error.value) == f"A patient named {EVIL} exists."
    root = Path(__file__).resolve().parents[2]
    for path in [*root.joinpath("pages").glob("*.py"), *root.joinpath("app").glob("*.py")]:
        source = path.read_text()
        # Both the old helper pattern and an unescaped error (st.error renders its text as Markdown) go through show_error.
        assert "st.error(ui.literal(" not in source and "st.error(str(" not in source, f"{path.name}: use ui.show_error"
