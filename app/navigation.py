"""The page list for `st.navigation`, by who is signed in. Pages that are not registered cannot be opened at all, so a
signed-out visitor reaches only the login page and the patient's join page."""

from __future__ import annotations

import streamlit as st

from app.remote import JOIN_PAGE_PATH
from store.models import Clinician


def join_page() -> st.Page:
    # The patient's page: no login, reached only through a join link carrying a token (hidden from the menu).
    return st.Page("pages/join.py", title="Join session", icon=":material/videocam:", url_path=JOIN_PAGE_PATH, visibility="hidden")


def pages_for(clinician: Clinician | None) -> dict[str, list[st.Page]] | list[st.Page]:
    if clinician is None:
        return [st.Page("pages/login.py", title="Log in", icon=":material/login:", url_path="login", default=True), join_page()]
    pages: dict[str, list[st.Page]] = {
        "Clinic": [
            st.Page("pages/patients.py", title="Patients", icon=":material/groups:", url_path="patients", default=True),
            st.Page("pages/patient.py", title="Patient", icon=":material/person:", url_path="patient", visibility="hidden"),
            st.Page("pages/sessions.py", title="Sessions", icon=":material/play_circle:", url_path="sessions"),
            st.Page("pages/live.py", title="Live dashboard", icon=":material/monitor_heart:", url_path="live"),
            st.Page("pages/review.py", title="Session review", icon=":material/insights:", url_path="review"),
            st.Page("pages/progress.py", title="Progress", icon=":material/trending_up:", url_path="progress"),
        ],
        "Setup": [st.Page("pages/devices.py", title="Devices", icon=":material/memory:", url_path="devices")],
    }
    if clinician.is_admin:
        pages["Setup"] += [
            st.Page("pages/clinicians.py", title="Clinicians", icon=":material/badge:", url_path="clinicians"),
            st.Page("pages/audit.py", title="Audit log", icon=":material/policy:", url_path="audit"),
        ]
    pages["Setup"].append(join_page())
    return pages
