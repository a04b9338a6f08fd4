"""The audit log (administrators): who viewed, changed or exported what, and when; and whether the log is intact."""

import pandas as pd
import streamlit as st

from app import audit, context, ui

ctx = context.require_admin()
st.title("Audit log")

# The last verification, not a new walk of the whole chain on every load (a long log would make the page slow).
if st.button("Verify now", icon=":material/fact_check:", help="Recompute every hash of the audit log now."):
    with st.spinner("Verifying the whole audit chain…"):
        audit.verify_now(ctx.store, ctx.settings, by=f"Audit page ({ctx.clinician.username})")
state = audit.chain_state(ctx.store, ctx.settings)
if state.last is None:
    st.warning("The audit chain has not been verified yet: press *Verify now*, or run the nightly job "
               "`python -m store.audit verify`.", icon=":material/help:")
else:
    when = (f"Last verified {ui.format_time(state.last.verified_at)} by {state.last.by}, "
            f"in {state.last.seconds:.1f} s")
    since = f"; {state.rows_since} rows appended since" if state.rows_since else ""
    if state.last.intact:
        st.success(ui.literal(f"{state.last.summary}. {when}{since}."), icon=":material/verified:")
    else:
        ui.show_error(f"{state.last.summary}. {when}{since}.", icon=":material/gpp_bad:")

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
