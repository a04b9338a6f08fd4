"""Streamlit sections of the clinical analyses (issue 15) that pages call in one line: expressivity on the Progress page."""

from __future__ import annotations

import streamlit as st

from app import expressivity
from store.api import Store
from store.models import Patient


def expressivity_section(store: Store, patient: Patient) -> None:
    st.markdown("**Expressivity per session** (dashed: the mean of the patient's first sessions)")
    result = expressivity.patient_course(store, patient.id)
    if result.frame.empty:
        st.caption(f"Needs sessions with at least {expressivity.MIN_READINGS} readings.")
        return
    st.plotly_chart(expressivity.course_figure(result), key="expressivity_figure")
    st.caption("Observations of the face as the model sees it, not a diagnosis: camera angle, lighting, medication, "
               "culture and the session's topic change these numbers too. Definitions: docs/app.md, \"Expressivity\".")
