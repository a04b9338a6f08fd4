"""The clinician's own patients at a glance (/cohort): sessions per week and mean valence per session (issue 15). Only the
signed-in clinician's own patients, never another clinician's (admins included)."""

import streamlit as st

from app import cohort, context, ui

ctx = context.require_clinician()
st.title("My patients: cohort")
ui.disclaimer()
result = cohort.cohort(ctx.store)
if result.sessions.empty:
    st.info("None of your patients has a session with readings yet.")
    st.stop()
st.markdown("**Sessions per week**")
st.plotly_chart(cohort.per_week_figure(result), key="cohort_per_week")
st.markdown("**Mean valence per session** (−1 unpleasant … +1 pleasant)")
st.plotly_chart(cohort.valence_figure(result), key="cohort_valence")
table = result.sessions.drop(columns=["patient_id"]).copy()
table["started_at"] = table["started_at"].map(ui.format_time)
st.dataframe(table.round(3), hide_index=True, key="cohort_table")
