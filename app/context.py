"""Where a page gets its settings, store and signed-in clinician. The one place the app opens the store.

The store is opened once per process (`st.cache_resource`) and shared by every browser session; each page then works
through `store.as_actor(Actor.for_clinician(clinician))`, so row-level security limits what it can read and write.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from settings import Settings
from store.api import Actor, Store
from store.errors import StoreError, StoreUnavailable
from store.models import Clinician

CLINICIAN_KEY = "_psya_clinician"  # session_state: the Clinician signed in for this run (set by streamlit_app.py)


def load_settings() -> Settings:
    """Where every page and streamlit_app.py start. Read on every run (cheap): tests and operators change the environment
    between runs of one process."""
    _leave_legacy_pages_mode()
    return Settings.load()


def _leave_legacy_pages_mode() -> None:
    """Because a `pages/` directory exists, Streamlit starts each server process in its legacy multipage mode, in which
    a request for /live or /join runs that page file alone, without streamlit_app.py (no login, no navigation), until
    some run calls `st.navigation`. The first page run of a fresh process therefore switches to `st.navigation` mode
    and reruns, so streamlit_app.py always decides which page runs."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def _close_store(store: Store) -> None:
    store.close()


@st.cache_resource(show_spinner="Opening the database…", on_release=_close_store)
def _cached_store(identity: str, _settings: Settings) -> Store:
    # `identity` is the cache key (the leading underscore keeps Settings, which holds a list, out of hashing):
    # one store per configured database, so a test process can point at several.
    from store import open_store  # imported lazily so a broken backend shows as a message, not an import crash

    return open_store(_settings)


def system_store(settings: Settings) -> Store:
    """The shared store acting as the system (login, setup, device authentication only)."""
    identity = "|".join(str(part) for part in (settings.backend, settings.database_url, settings.supabase_url, settings.data_dir))
    return _cached_store(identity, settings)


def open_system_store_or_stop(settings: Settings) -> Store:
    """The store, or a clear message and the end of this run when the database cannot be reached (nothing is lost:
    reload the page to retry)."""
    try:
        store = system_store(settings)
        store.ping()
        return store
    except StoreUnavailable as error:
        st.error(f"The database cannot be reached right now ({error}). Nothing was lost; reload this page to try again.")
        st.stop()
    except StoreError as error:
        st.error(f"The database could not be opened: {error}")
        st.stop()
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class PageContext:
    settings: Settings
    store: Store  # bound to the signed-in clinician: row-level security applies
    clinician: Clinician

    @property
    def is_admin(self) -> bool:
        return self.clinician.is_admin


def require_clinician() -> PageContext:
    """Every page's first line. Stops the page when nobody is signed in (pages are only registered after login, this is
    a second lock on the same door)."""
    settings = load_settings()
    clinician = st.session_state.get(CLINICIAN_KEY)
    if not isinstance(clinician, Clinician):
        st.warning("Please log in.")
        st.stop()
    store = system_store(settings).as_actor(Actor.for_clinician(clinician))
    return PageContext(settings, store, clinician)


def require_admin() -> PageContext:
    context = require_clinician()
    if not context.is_admin:
        st.error("This page is for administrators.")
        st.stop()
    return context
