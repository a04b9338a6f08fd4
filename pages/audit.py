"""The audit log (administrators): who viewed, changed or exported what, and when; and whether the log is intact."""

import pandas as pd
import streamlit as st

from app import audit, context, ui

ctx = context.require_admin()
st.title("Audit log")

chain = audit.chain_status(ctx.store)
if chain.intact:
    st.success(chain.summary, icon=":material/verified:")
else:
    st.error(chain.summary, icon=":material/gpp_bad:")

limit = st.select_slider("Events", options=[100, 500, 2000], value=500)
rows = audit.readable_audit(ctx.store, limit=limit)
frame = pd.DataFrame(
    [{"When": ui.format_time(r.last_at), "Since": ui.format_time(r.first_at) if r.count > 1 else "", "Times": r.count,
      "Who": r.actor, "Action": r.action, "What": r.entity, "Which": r.target} for r in rows],
    columns=["When", "Since", "Times", "Who", "Action", "What", "Which"],
)
actions = sorted(frame["Action"].unique())
chosen = st.multiselect("Actions", actions, default=actions)
st.caption("Repeated identical events in a row are shown once, with how many times and since when. "
           "\"view_denied\": someone asked for a record that is not theirs.")
st.dataframe(frame[frame["Action"].isin(chosen)], hide_index=True, width="stretch")
