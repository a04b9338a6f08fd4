"""Treatment progress of one patient (/progress?patient=...): emotion proportions per session, with trends."""

import streamlit as st

from app import charts, clinical_ui, clock, context, progress, ui

ctx = context.require_clinician()
tz = clock.clinician_time_zone(ctx.store, ctx.settings.default_time_zone)  # times in the clinician's zone
st.title("Progress")
ui.disclaimer()

patient = ui.patient_picker(ctx.store, key="progress_patient")

result = progress.patient_progress(ctx.store, patient.id)
if result.sessions == 0:
    st.info(f"{ui.literal(patient.full_name)} has no session with readings yet.")
    st.stop()

st.caption(progress.trend_sentence(result))
st.markdown("**Mean emotion proportions per session** (bars: 95 % bootstrap interval; dashed: a trend, drawn only where there is one)")
st.plotly_chart(charts.progress_figure(result.frame, result.trends), key="progress_figure")
st.markdown("**Valence index per session**")
st.plotly_chart(charts.valence_progress_figure(result.frame, result.trends["valence"]), key="valence_figure")
st.dataframe(progress.progress_table(result, tz), hide_index=True)
clinical_ui.expressivity_section(ctx.store, patient)  # issue 15
