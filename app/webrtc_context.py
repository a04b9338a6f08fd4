"""What the patient's page needs from the process: settings, the store, the analysis function (each made once).

Kept apart from the clinician app's own context so the join page works without a login and stays small.
"""

from __future__ import annotations

import threading

import numpy as np
import streamlit as st

from app.remote import AnalyzeFn
from settings import Settings
from store.api import Store


@st.cache_resource(show_spinner=False)
def get_settings() -> Settings:
    return Settings.load()


@st.cache_resource(show_spinner=False)
def get_store() -> Store:
    from store import open_store

    return open_store(get_settings())


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
