"""The "Data rights" section of the patient page: consent state and history, withdrawal, the complete export and, for
admins, erasure and new consent wording. Drawn by pages/patient.py with `render(ctx, patient)`; the work is in
app.patient_rights and the store."""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st

from app import clock, patient_rights, ui
from app.context import PageContext
from store.errors import InvalidInput, StoreError
from store.models import Patient


def _history_table(state: patient_rights.ConsentState) -> pd.DataFrame:
    return pd.DataFrame(
        [{"Date": c.consent_date, "Consent": "given" if c.given else "withdrawn", "Text version": c.text_version,
          "Recorded": ui.format_time(c.recorded_at)} for c in reversed(state.history)],
        columns=["Date", "Consent", "Text version", "Recorded"],
    )


def render(ctx: PageContext, patient: Patient) -> None:
    store = ctx.store
    tz = clock.clinician_time_zone(store, ctx.settings.default_time_zone)  # the reports' clock times
    st.divider()
    st.subheader("Data rights")
    state = patient_rights.consent_state(store, patient.id)
    sentence = patient_rights.consent_sentence(state)
    (st.caption if state.is_current else st.warning)(sentence)
    with st.expander(f"Consent text (version {state.current_text.version}) and consent history"):
        st.write(ui.literal(state.current_text.text))
        if state.history:
            st.dataframe(_history_table(state), hide_index=True, width="stretch")

    if patient.consent_facial_analysis:
        st.write("Withdrawing consent ends a running session at once; no new session can start.")
        if st.button("Withdraw consent", icon=":material/block:", key="withdraw_consent"):
            try:
                ended = patient_rights.withdraw_consent(store, patient, date.today())
            except StoreError as error:
                ui.show_error(error)
            else:
                ui.flash(f"Consent withdrawn on {date.today().isoformat()}."
                         + (f" {len(ended)} running session(s) ended." if ended else ""))
                st.rerun()

    st.download_button(
        "Export everything about this patient (zip)",
        # built (and audited) only when clicked
        data=lambda: patient_rights.export_zip(store, patient.id, tz=tz),
        file_name=patient_rights.export_file_name(patient),
        mime="application/zip",
        icon=":material/download:",
        key="export_patient",
    )
    st.caption("JSON of every record, the same as a FHIR R4 Bundle, each session's readings (CSV) and report (HTML).")

    if not ctx.is_admin:
        return
    with st.expander("Admin: publish new consent text"):
        with st.form("publish_consent_text"):
            text = st.text_area("New consent text", value=state.current_text.text, height=200)
            publish = st.form_submit_button("Publish consent text")
        if publish:
            try:
                published = store.publish_consent_text(text)
            except (InvalidInput, StoreError) as error:
                ui.show_error(error)
            else:
                ui.flash(f"Consent text version {published.version} published: every patient needs new consent.")
                st.rerun()
    with st.expander("Admin: erase this patient"):
        st.warning("Erasure deletes the patient, their record, consent history, sessions, readings and notes for good. "
                   "Only an audit entry (when, by whom) remains. Export first if the patient wants a copy.")
        with st.form("erase_patient"):
            typed = st.text_input(f"Type the patient's full name ({ui.literal(patient.full_name)}) to confirm", key="erase_confirmation")
            erase = st.form_submit_button("Erase patient permanently", type="primary")
        if erase:
            try:
                result = patient_rights.erase(store, patient, typed)
            except (InvalidInput, StoreError) as error:
                ui.show_error(error)
            else:
                ui.flash(patient_rights.erasure_sentence(result))
                st.switch_page("pages/patients.py")
