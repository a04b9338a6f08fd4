"""What the patient's page needs from the process: settings, the store (the app's, from `app.context`), and the
analysis function (made once per process).
"""

from __future__ import annotations

import streamlit as st

from app import context, remote
from app.remote import AnalyzeFn
from settings import Settings
from store.api import Store


def get_settings() -> Settings:
    return context.load_settings()


def get_store() -> Store:
    """The app's shared store (one per process). The patient has no login: the token is the only credential, and the
    store checks it on every lookup and insert (`session_for_token`, `insert_remote_readings`)."""
    return context.system_store(get_settings())


@st.cache_resource(show_spinner="Loading the analysis model…")
def get_analyze() -> AnalyzeFn:
    return remote.make_analyze(get_settings())
