"""The audit log (administrators): who viewed, changed or exported what, and when."""

import pandas as pd
import streamlit as st

from app import context, ui

ctx = context.require_admin()
st.title("Audit log")

limit = st.select_slider("Events", options=[100, 500, 2000], value=500)
events = ctx.store.list_audit(limit=limit)
frame = pd.DataFrame([{"When": ui.format_time(e.at), "Actor": e.actor, "Action": e.action, "Entity": e.entity, "Id": e.entity_id} for e in events], columns=["When", "Actor", "Action", "Entity", "Id"])
actions = sorted(frame["Action"].unique())
chosen = st.multiselect("Actions", actions, default=actions)
clinicians = {f"clinician:{c.id}": c.username for c in context.system_store(ctx.settings).list_clinicians()}
frame["Actor"] = frame["Actor"].map(lambda a: clinicians.get(a, a))
st.dataframe(frame[frame["Action"].isin(chosen)], hide_index=True, width="stretch")
