"""Session review (/review?session=...): smoothed timeline, dominant band, distribution, valence, peaks, notes, an optional
baseline, and the exports (CSV of readings, printable HTML report)."""

import pandas as pd
import streamlit as st

from app import clinical_exports, clinical_ui, clock, context, marker_ui, review, ui
from store.errors import InvalidInput, NotFound, StoreError

ctx = context.require_clinician()
tz = clock.clinician_time_zone(ctx.store, ctx.settings.default_time_zone)  # times in the clinician's zone
st.title("Session review")
ui.show_flash()
ui.disclaimer()

names = {p.id: p.full_name for p in ctx.store.list_patients(include_archived=True)}
session_id = ui.query_uuid("session")
if session_id is None:
    all_sessions = ctx.store.list_sessions()
    if not all_sessions:
        st.info("No session yet.")
        st.stop()
    by_id = {s.id: s for s in all_sessions}
    chosen = st.selectbox("Session", list(by_id), format_func=lambda i: clock.session_label(by_id[i], tz, names.get(by_id[i].patient_id)), index=None, placeholder="Choose a session")
    if chosen is None:
        st.stop()
    st.query_params["session"] = str(chosen)
    session_id = chosen

try:
    session = ctx.store.get_session(session_id)
    patient = ctx.store.get_patient(session.patient_id)
except NotFound:
    st.error("This session does not exist or is not one of yours.")
    st.stop()

st.subheader(ui.session_link_label(session, patient.full_name, tz))
st.page_link("pages/patient.py", label=f"Patient: {ui.literal(patient.full_name)}", icon=":material/person:", query_params={"id": str(patient.id)})

smooth_col, baseline_col = st.columns(2)
smoothing = smooth_col.slider("Smoothing window (seconds)", 0, 30, 5, key="smoothing")
baseline_choice = baseline_col.radio(
    "Neutral baseline",
    ["none", "first_minute", "session"],
    format_func={"none": "None", "first_minute": "First minute of this session", "session": "A calibration session"}.get,
    horizontal=True,
    key="baseline",
)
baseline_session_id = None
if baseline_choice == "session":
    others = [s for s in ctx.store.list_sessions(patient.id) if s.id != session.id]
    if others:
        others_by_id = {s.id: s for s in others}
        baseline_session_id = baseline_col.selectbox("Calibration session", list(others_by_id), format_func=lambda i: clock.session_label(others_by_id[i], tz), key="baseline_session")
    else:
        baseline_col.caption("This patient has no other session to use as a baseline.")

result = review.build(ctx.store, session, float(smoothing), baseline_choice, baseline_session_id, exclude_low_quality=ctx.settings.exclude_low_quality)
summary = result.summary
if "viewed_sessions" not in st.session_state:
    st.session_state.viewed_sessions = set()
if session.id not in st.session_state.viewed_sessions:  # audit the view once, not on every widget change
    ctx.store.audit("view", "session", str(session.id))
    st.session_state.viewed_sessions.add(session.id)

metrics = st.columns(5)
metrics[0].metric("Readings", summary.readings)
metrics[1].metric("Duration", ui.format_duration(summary.duration_s))
metrics[2].metric("Most frequent", summary.dominant or "—")
metrics[3].metric("Valence index", "—" if summary.valence_index is None else f"{summary.valence_index:+.2f}", help=review.VALENCE_HELP)
metrics[4].metric("Arousal index", "—" if summary.arousal_index is None else f"{summary.arousal_index:+.2f}", help=review.AROUSAL_HELP)

if result.quality is not None and result.quality.readings:
    q = result.quality
    left_out = f"; {q.low_quality} low-quality readings (tiny face, face at the frame edge or turned away) left out of every number" if q.low_quality and result.low_quality_excluded else (f"; {q.low_quality} low-quality readings included (EXCLUDE_LOW_QUALITY is off)" if q.low_quality else "")
    st.caption(f"Usable face in {q.usable_share:.0%} of the {q.readings} readings{left_out}.")
if result.baseline_problem:
    st.warning(result.baseline_problem)
if summary.readings == 0:
    st.info("This session has no readings.")
else:
    for index, (title, figure) in enumerate(result.figures()):
        st.markdown(f"**{title}**")
        st.plotly_chart(figure, key=f"review_figure_{index}")
    peaks_col, notes_col = st.columns(2)
    with peaks_col:
        st.markdown("**Peaks**", help=review.PEAK_HELP)
        st.dataframe(
            pd.DataFrame(
                [{"At": ui.format_duration(p.t), "Emotion": p.label, "Highest probability": round(p.value, 2), "Lasted (s)": round(p.duration_s, 1)} for p in summary.peaks],
                columns=["At", "Emotion", "Highest probability", "Lasted (s)"],
            ),
            hide_index=True,
        )
    with notes_col:
        st.markdown("**Notes**")
        start = result.start
        st.dataframe(
            pd.DataFrame(
                [{"At": ui.format_duration((pd.Timestamp(n.at) - start).total_seconds()) if start is not None else clock.format_moment(n.at, tz), "Note": n.text} for n in result.annotations],
                columns=["At", "Note"],
            ),
            hide_index=True,
        )

marker_ui.review_section(ctx.store, session, result, ctx.settings)  # issue 15: markers, reactions
with st.form("review_note", clear_on_submit=True):
    st.markdown("**Add a note**")
    time_col, text_col = st.columns([1, 4])
    note_time = time_col.text_input("Session time (m:ss)", placeholder="12:30")
    note_text = text_col.text_input("Note", placeholder="e.g. mentioned the accident")
    if st.form_submit_button("Add note", icon=":material/edit_note:"):
        try:
            review.add_note(ctx.store, result, note_time, note_text)
            ui.flash("Note added.")
            st.rerun()
        except (ValueError, InvalidInput, StoreError) as error:
            ui.show_error(error)

st.subheader("Export")
csv_col, report_col = st.columns(2)
store, clinician = ctx.store, ctx.clinician
reaction_windows = clinical_ui.reaction_windows(ctx.settings)
# Generated (and audited) only when clicked: the callables run when the clinician downloads.
csv_col.download_button(
    "Readings (CSV)",
    data=lambda: review.readings_csv(store, result),
    file_name=f"{review.exports.export_file_name(patient, session, 'csv')}",
    mime="text/csv",
    icon=":material/download:",
    key="download_csv",
    on_click="ignore",  # a download needs no rerun of the page
)
report_col.download_button(
    "Printable report (HTML)",
    data=lambda: clinical_exports.html_report(store, result, patient, clinician, *reaction_windows, tz),
    file_name=f"{review.exports.export_file_name(patient, session, 'html')}",
    mime="text/html",
    icon=":material/print:",
    key="download_report",
    on_click="ignore",
)
st.caption("Open the report in a browser and print it (or save it as PDF); its charts are drawn on the server, so it "
           "stays small and runs no script.")
clinical_ui.export_buttons(store, result, patient, clinician, ctx.settings, tz)  # issue 15: PDF, FHIR, detailed CSVs
