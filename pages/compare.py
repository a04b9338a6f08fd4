"""Two sessions of one patient side by side (/compare?patient=...): distribution, valence and arousal, reactions by marker
type (issue 15)."""

import pandas as pd
import streamlit as st

from app import charts, cohort, context, ui

ctx = context.require_clinician()
st.title("Compare sessions")
ui.disclaimer()

patient = ui.patient_picker(ctx.store, key="compare_patient")

found = [s for s in ctx.store.list_sessions(patient.id) if s.status == "ended"]
if len(found) < 2:
    st.info(f"{ui.literal(patient.full_name)} needs two ended sessions to compare.")
    st.stop()
sessions_by_id = {s.id: s for s in found}
session_ids = list(sessions_by_id)
left_col, right_col = st.columns(2)
left_id = left_col.selectbox("Session A", session_ids, index=len(session_ids) - 1, format_func=lambda i: ui.session_label(sessions_by_id[i]), key="compare_a")
right_id = right_col.selectbox("Session B", session_ids, index=0, format_func=lambda i: ui.session_label(sessions_by_id[i]), key="compare_b")
before_s, after_s = float(ctx.settings.reaction_before_s), float(ctx.settings.reaction_after_s)
for column, session_id, name in ((left_col, left_id, "a"), (right_col, right_id, "b")):
    side = cohort.session_side(ctx.store, sessions_by_id[session_id], before_s, after_s)
    with column:
        metrics = st.columns(3)
        metrics[0].metric("Readings", len(side.frame))
        metrics[1].metric("Mean valence", "—" if side.mean_valence is None else f"{side.mean_valence:+.2f}")
        metrics[2].metric("Mean arousal", "—" if side.mean_arousal is None else f"{side.mean_arousal:+.2f}")
        st.plotly_chart(charts.distribution_figure(side.distribution, height=240), key=f"compare_distribution_{name}")
        st.plotly_chart(cohort.affect_figure(side), key=f"compare_affect_{name}")
        rows = []
        for kind, pooled in side.reactions.items():
            by = {r.measure: r for r in pooled}
            rows.append({"Marker type": kind, "Markers": by["valence"].events,
                         "Δ valence": None if by["valence"].change is None else round(by["valence"].change, 3),
                         "Δ arousal": None if by["arousal"].change is None else round(by["arousal"].change, 3)})
        st.caption(f"Reactions to events ({after_s:.0f} s after vs {before_s:.0f} s before)")
        st.dataframe(pd.DataFrame(rows, columns=["Marker type", "Markers", "Δ valence", "Δ arousal"]), hide_index=True, key=f"compare_reactions_{name}")
