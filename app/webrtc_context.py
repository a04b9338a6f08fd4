"""What the patient's page needs from the process: settings, the store (the app's, from `app.context`), and the
analysis function (made once per process).
"""

from __future__ import annotations

import threading

import numpy as np
import streamlit as st

from app import context
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
    return make_analyze(get_settings())


def make_analyze(settings: Settings) -> AnalyzeFn:
    """`fer.analyze` bound to the configured model.

    One model instance per thread: a TFLite interpreter must not be invoked from two threads at once, and every
    patient's analysis thread is long-lived, so a thread-local copy costs one load per patient and no locking.
    """
    import fer

    local = threading.local()

    def analyze(frame: np.ndarray):
        pipeline = getattr(local, "pipeline", None)
        if pipeline is None:
            pipeline = local.pipeline = fer.Pipeline.load(settings.model_path)
        return pipeline.analyze(frame)

    return analyze
