"""Patients: search, list, create (with consent to facial analysis)."""

import streamlit as st

from app import context, patients, ui
from store.errors import InvalidInput, StoreError

ctx = context.require_clinician()
st.title("Patients")
ui.show_flash()
ui.disclaimer()

search_col, archived_col = st.columns([3, 1])
search = search_col.text_input("Search by name", key="patient_search", placeholder="part of the name")
include_archived = archived_col.checkbox("Show archived", key="show_archived")
found = ctx.store.list_patients(search=search.strip(), include_archived=include_archived)

if not found:
    st.info("No patients match." if search else "No patients yet: add the first one below.")
for patient in found:
    with st.container(border=True):
        # The name alone in a wide column (the birth date moved beside the diagnosis): long names are not cut off.
        name_col, info_col, consent_col = st.columns([5, 4, 2])
        name_col.page_link("pages/patient.py", label=ui.literal(patient.full_name) + (" [archived]" if patient.archived else ""), icon=":material/person:", query_params={"id": str(patient.id)})
        born = f"born {patient.date_of_birth.isoformat()} · " if patient.date_of_birth else ""
        info_col.text(born + (patient.diagnosis or "no diagnosis recorded"))  # plain text: user input is never markdown
        consent_col.caption("consent: yes" if patient.consent_facial_analysis else "consent: **no**")

with st.expander("New patient", expanded=not found and not search, icon=":material/person_add:"):
    with st.form("new_patient", clear_on_submit=True):
        full_name = st.text_input("Full name")
        born_col, since_col = st.columns(2)
        date_of_birth = born_col.date_input("Date of birth", value=None, min_value=ui.EARLIEST_BIRTH, max_value="today")
        in_treatment_since = since_col.date_input("In treatment since", value=None, min_value=ui.EARLIEST_BIRTH, max_value="today")
        diagnosis = st.text_input("Diagnosis")
        contact = st.text_input("Contact")
        notes = st.text_area("Notes")
        consent = st.checkbox("The patient consents to facial analysis during sessions")
        scope = st.text_input("Consent scope", value=patients.DEFAULT_CONSENT_SCOPE)
        submitted = st.form_submit_button("Create patient", type="primary")
    if submitted:
        try:
            created = patients.create(
                ctx.store,
                patients.new_patient(full_name, date_of_birth, diagnosis, in_treatment_since, contact, notes),
                consent=consent,
                consent_scope=scope,
            )
        except (InvalidInput, StoreError) as error:
            ui.show_error(error)
        else:
            ui.flash(f"Created {created.full_name}.")
            st.switch_page("pages/patient.py", query_params={"id": str(created.id)})
