"""AppTest fixtures: the real app script (streamlit_app.py) against a fresh, migrated PostgreSQL database per test."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
APP_SCRIPT = PROJECT_ROOT / "streamlit_app.py"
PASSWORD = "correct horse battery staple"  # the password tests/conftest.py gives its clinician fixtures


@pytest.fixture(autouse=True)
def navigation_mode_as_in_the_server(monkeypatch):
    """Keep Streamlit's legacy `pages/`-directory mode off, as a real server does.

    A server turns that mode off for the whole process at the first `st.navigation` call. AppTest instead re-detects it
    before every run (the `pages/` directory exists), so without this every rerun after the first would execute the
    page file alone, skipping streamlit_app.py and its login check.
    """
    from streamlit.runtime.pages_manager import PagesManager

    original_init = PagesManager.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


@pytest.fixture
def app_env(database_url, tmp_path, monkeypatch):
    """Point Settings.load() at this test's database and a private data dir (the generated cookie key lands there)."""
    from app import context

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("PSYA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PSYA_SECRETS_FILE", str(tmp_path / "no-secrets.toml"))
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://clinic.example.org")
    yield tmp_path
    context._cached_store.clear()  # closes the app's pool before the database is dropped


@pytest.fixture
def new_app(app_env):
    def make() -> AppTest:
        return AppTest.from_file(str(APP_SCRIPT), default_timeout=60)

    return make


def log_in(at: AppTest, username: str, password: str = PASSWORD) -> AppTest:
    at.run()
    inputs = {ti.label: ti for ti in at.text_input}
    inputs["Username"].input(username)
    inputs["Password"].input(password)
    at.button[0].click()  # the form's submit button
    return at.run()


@pytest.fixture
def signed_in_app(new_app, clinician):
    """The app with the `clinician` fixture logged in through the real login form."""
    at = log_in(new_app(), clinician.username)
    assert not at.exception, at.exception
    return at


def open_page(at: AppTest, page: str, **query: str) -> AppTest:
    """Go to `page` (e.g. "pages/patient.py") with these query parameters, as a link in the app would."""
    at.query_params = {k: str(v) for k, v in query.items()}
    return at.switch_page(page).run()


def visible_text(markdown: str) -> str:
    """What a reader sees of a Markdown string (CommonMark, as Streamlit's renderer reads it): escapes resolved, markup
    gone. `html_tags` in the same module tells whether it would have produced links, images or raw HTML."""
    import html
    import re

    rendered = _markdown().render(str(markdown)).replace("\u2060", "")  # WORD JOINER: zero-width, invisible
    return html.unescape(re.sub(r"<[^>]+>", "", rendered.replace("<br />\n", "\n"))).strip(" \n")  # not no-break spaces


def html_tags(markdown: str) -> set[str]:
    """The HTML tags a Markdown string renders to, e.g. {"p"} for plain text, {"p", "a"} when it holds a link."""
    import re

    return set(re.findall(r"<([a-z0-9]+)[\s/>]", _markdown().render(str(markdown))))


def _markdown():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def page_text(at: AppTest) -> str:
    """Every text-like element of the rendered page as the reader sees it (Markdown rendered), for "does the page say X"
    checks."""
    kinds = ("title", "header", "subheader", "markdown", "caption", "error", "warning", "info", "success", "code", "text", "metric")
    parts: list[str] = []
    for kind in kinds:
        for element in getattr(at, kind):
            value = getattr(element, "value", "")
            label = getattr(element, "label", "")
            shown = f"{label} {value}".strip()
            parts.append(shown if kind in ("code", "text") else visible_text(shown))  # st.code / st.text are literal
    return "\n".join(parts)


def follow(at: AppTest, page: str) -> AppTest:
    """After the app itself switched pages (st.switch_page), keep AppTest on that page for the next runs; AppTest would
    otherwise request the page it was last switched to by the test. The app's query parameters are kept."""
    return at.switch_page(page)
