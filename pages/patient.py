"""One patient: details (edit, archive), consent, medical record entries, sessions, progress. Opened as /patient?id=..."""

from datetime import date

import streamlit as st

from app import charts, clock, context, patients, progress, ui
from store.errors import InvalidInput, NotFound, StoreError
from store.models import RECORD_KINDS

ctx = context.require_clinician()
tz = clock.clinician_time_zone(ctx.store, ctx.settings.default_time_zone)  # times in the clinician's zone
patient_id = ui.query_uuid("id")
if patient_id is None:
    st.info("Choose a patient on the Patients page.")
    st.page_link("pages/patients.py", label="Patients", icon=":material/groups:")
    st.stop()
try:
    patient = ctx.store.get_patient(patient_id)  # audited as a view by the store
except NotFound:
    st.error("This patient does not exist or is not one of yours.")
    st.stop()

st.title(ui.literal(patient.full_name))
ui.show_flash()
ui.disclaimer()
facts = st.columns(4)
facts[0].metric("Age", patients.age(patient) if patients.age(patient) is not None else "—")
facts[1].metric("In treatment since", ui.format_date(patient.in_treatment_since))
facts[2].metric("Consent", "given" if patient.consent_facial_analysis else "missing")
facts[3].metric("Status", "archived" if patient.archived else "active")
if patient.consent_facial_analysis:
    st.caption(ui.literal(patients.consent_summary(patient)))
else:
    st.warning(ui.literal(patients.consent_summary(patient)))

details_tab, consent_tab, record_tab, sessions_tab, progress_tab = st.tabs(["Details", "Consent", "Medical record", "Sessions", "Progress"])

with details_tab:
    with st.form("edit_patient"):
        full_name = st.text_input("Full name", value=patient.full_name)
        born_col, since_col = st.columns(2)
        date_of_birth = born_col.date_input("Date of birth", value=patient.date_of_birth, min_value=ui.EARLIEST_BIRTH, max_value="today")
        in_treatment_since = since_col.date_input("In treatment since", value=patient.in_treatment_since, min_value=ui.EARLIEST_BIRTH, max_value="today")
        diagnosis = st.text_input("Diagnosis", value=patient.diagnosis)
        contact = st.text_input("Contact", value=patient.contact)
        notes = st.text_area("Notes", value=patient.notes)
        save = st.form_submit_button("Save changes", type="primary")
    if save:
        try:
            edited = patients.new_patient(full_name, date_of_birth, diagnosis, in_treatment_since, contact, notes)
            patients.update(ctx.store, patient, edited)
        except (InvalidInput, StoreError) as error:
            ui.show_error(error)
        else:
            ui.flash("Saved.")
            st.rerun()
    label = "Restore patient" if patient.archived else "Archive patient"
    if st.button(label, icon=":material/archive:"):
        ctx.store.archive_patient(patient.id, archived=not patient.archived)
        ui.flash("Restored." if patient.archived else "Archived: the patient is hidden from lists and no new session can start.")
        st.rerun()

with consent_tab:
    st.write("Facial analysis records only emotion probabilities with timestamps, never video. No session can start without consent.")
    with st.form("consent"):
        given = st.checkbox("The patient consents to facial analysis", value=patient.consent_facial_analysis)
        scope = st.text_area("Scope of the consent", value=patient.consent_scope or patients.DEFAULT_CONSENT_SCOPE)
        on = st.date_input("Date of consent (or of withdrawal)", value=date.today(), max_value="today")
        record = st.form_submit_button("Record consent", type="primary")
    if record:
        try:
            patients.set_consent(ctx.store, patient.id, given, scope, on)
        except (InvalidInput, StoreError) as error:
            ui.show_error(error)
        else:
            ui.flash("Consent recorded." if given else "Consent withdrawal recorded.")
            st.rerun()

with record_tab:
    with st.form("record_entry", clear_on_submit=True):
        kind_col, date_col = st.columns(2)
        kind = kind_col.selectbox("Kind", RECORD_KINDS, format_func=lambda k: patients.RECORD_KIND_LABELS[k])
        entry_date = date_col.date_input("Date", value=date.today(), max_value="today")
        text = st.text_area("Entry")
        add = st.form_submit_button("Add entry")
    if add:
        try:
            patients.add_record(ctx.store, patient.id, entry_date, kind, text)
        except (InvalidInput, StoreError) as error:
            ui.show_error(error)
        else:
            ui.flash("Entry added.")
            st.rerun()
    entries = ctx.store.list_record_entries(patient.id)
    if entries:
        st.dataframe(patients.records_table(entries), hide_index=True, width="stretch")
    else:
        st.caption("No entries yet.")

with sessions_tab:
    if patient.consent_facial_analysis and not patient.archived:
        st.page_link("pages/sessions.py", label="Start a session", icon=":material/play_circle:", query_params={"patient": str(patient.id)})
    patient_sessions = ctx.store.list_sessions(patient.id)
    if not patient_sessions:
        st.caption("No sessions yet.")
    for session in patient_sessions:
        target = "pages/live.py" if session.status == "live" else "pages/review.py"
        st.page_link(target, label=clock.session_label(session, tz), query_params={"session": str(session.id)})

with progress_tab:
    result = progress.patient_progress(ctx.store, patient.id)
    if result.sessions == 0:
        st.caption("No session with readings yet.")
    else:
        st.plotly_chart(charts.progress_figure(result.frame, result.trends), key="patient_progress")
        st.caption(progress.trend_sentence(result))
        st.page_link("pages/progress.py", label="Full progress view", query_params={"patient": str(patient.id)})

# consent withdrawal, export and erasure (docs/privacy.md)
from app import patient_rights_panel  # noqa: E402

patient_rights_panel.render(ctx, patient)
