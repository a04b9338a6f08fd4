"""The page list for `st.navigation`, by who is signed in. Pages that are not registered cannot be opened at all, so a
signed-out visitor reaches only the login page and the patient's join page."""

from __future__ import annotations

import streamlit as st

from app.remote import JOIN_PAGE_PATH
from store.models import Clinician


def join_page() -> st.Page:
    # The patient's page: no login, reached only through a join link carrying a token (hidden from the menu).
    return st.Page("pages/join.py", title="Join session", icon=":material/videocam:", url_path=JOIN_PAGE_PATH, visibility="hidden")


LOGIN_PATH = "login"
# A default page is served at "/" and its own url_path answers nothing (Streamlit reserves it), so each default page gets
# an unused name and a hidden twin answers its real address.
SIGNED_OUT_HOME = "welcome"
SIGNED_IN_HOME = "home"
SIGNED_IN_PATHS = ("patients", "patient", "sessions", "live", "review", "progress", "compare", "cohort", "devices", "clinicians",
                   "audit")


def pages_for(clinician: Clinician | None) -> dict[str, list[st.Page]] | list[st.Page]:
    if clinician is None:
        # Every signed-in address shows the login form too (hidden aliases), so a bookmark or a reload of /live?session=...
        # asks for the password and then lands where it pointed, instead of a "page not found" dialog.
        aliases = [st.Page("pages/login.py", title="Log in", url_path=path, visibility="hidden") for path in (LOGIN_PATH, *SIGNED_IN_PATHS)]
        return [st.Page("pages/login.py", title="Log in", icon=":material/login:", url_path=SIGNED_OUT_HOME, default=True), join_page(), *aliases]
    pages: dict[str, list[st.Page]] = {
        "Clinic": [
            st.Page("pages/patients.py", title="Patients", icon=":material/groups:", url_path=SIGNED_IN_HOME, default=True),
            st.Page("pages/patient.py", title="Patient", icon=":material/person:", url_path="patient", visibility="hidden"),
            st.Page("pages/sessions.py", title="Sessions", icon=":material/play_circle:", url_path="sessions"),
            st.Page("pages/live.py", title="Live dashboard", icon=":material/monitor_heart:", url_path="live"),
            st.Page("pages/review.py", title="Session review", icon=":material/insights:", url_path="review"),
            st.Page("pages/progress.py", title="Progress", icon=":material/trending_up:", url_path="progress"),
            st.Page("pages/compare.py", title="Compare sessions", icon=":material/compare:", url_path="compare"),
            st.Page("pages/cohort.py", title="My patients: cohort", icon=":material/groups_3:", url_path="cohort"),
        ],
        "Setup": [st.Page("pages/devices.py", title="Devices", icon=":material/memory:", url_path="devices")],
    }
    if clinician.is_admin:
        pages["Setup"] += [
            st.Page("pages/clinicians.py", title="Clinicians", icon=":material/badge:", url_path="clinicians"),
            st.Page("pages/audit.py", title="Audit log", icon=":material/policy:", url_path="audit"),
        ]
    # /login after signing in (a reload of the page the form was on) goes to the patients list.
    pages["Setup"] += [
        join_page(),
        st.Page("pages/patients.py", title="Patients", url_path="patients", visibility="hidden"),
        st.Page(_to_patients, title="Log in", url_path=LOGIN_PATH, visibility="hidden"),
    ]
    return pages


def _to_patients() -> None:
    st.switch_page("pages/patients.py")
