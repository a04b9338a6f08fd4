"""Psychopathology Assistant: `streamlit run streamlit_app.py` (or `make run`).

This file only wires things together: open the store (once per process), find who is signed in, register the pages they
may open, and run the chosen one. Pages live in pages/, their logic in app/.
"""

import streamlit as st

from app import context, navigation, session_auth

st.set_page_config(page_title="Psychopathology Assistant", page_icon=":material/psychology:", layout="wide")

settings = context.load_settings()
store = context.open_system_store_or_stop(settings)
clinician = session_auth.resolve_clinician(store, settings)
if clinician is not None:
    session_auth.sidebar_account(store, settings, clinician)

page = st.navigation(navigation.pages_for(clinician))
page.run()
