"""Clinician accounts (administrators): list them, add colleagues, and for one account: clear its login delay, set a new
password, deactivate or reactivate it."""

import pandas as pd
import streamlit as st

from app import auth, context, session_auth, ui
from store.errors import InvalidInput, StoreError

ctx = context.require_admin()
st.title("Clinicians")
ui.show_flash()
# Accounts are changed by the system actor (the store allows nothing else); the admin check is above, and the admin's own
# audit entry records who did it.
system = context.system_store(ctx.settings)

with st.form("new_clinician", clear_on_submit=True):
    display_name = st.text_input("Full name")
    username = st.text_input("Username")
    role = st.radio("Role", ["clinician", "admin"], horizontal=True)
    password = st.text_input("Initial password", type="password", help=f"At least {auth.MIN_PASSWORD_LENGTH} characters")
    confirmation = st.text_input("Repeat the password", type="password")
    create = st.form_submit_button("Add clinician", type="primary")
if create:
    try:
        created = auth.create_clinician(system, username, display_name, password, confirmation, role)
        ctx.store.audit("create", "clinician", str(created.id))
    except (InvalidInput, StoreError) as error:
        ui.show_error(error)
    else:
        ui.flash(f"Added {created.display_name} ({created.role}).")
        st.rerun()

clinicians = system.list_clinicians()
st.dataframe(
    pd.DataFrame(
        [
            {
                "Name": c.display_name,
                "Username": c.username,
                "Role": c.role,
                "Active": "yes" if c.active else "no",
                "Failed logins": c.failed_logins,
                "Login delayed until": ui.format_time(c.locked_until) if c.locked_until else "—",
            }
            for c in clinicians
        ]
    ),
    hide_index=True,
    width="stretch",
)

st.subheader("Manage an account")
by_id = {c.id: c for c in clinicians}
chosen_id = st.selectbox("Clinician", list(by_id), format_func=lambda i: f"{by_id[i].display_name} ({by_id[i].username})", key="manage_clinician")
chosen = by_id[chosen_id]
is_me = chosen.id == ctx.clinician.id

unlock_col, active_col = st.columns(2)
if unlock_col.button("Clear login delay", icon=":material/lock_open:", disabled=not chosen.failed_logins and not chosen.locked_until):
    system.reset_login_throttle(chosen.username)
    ctx.store.audit("unlock", "clinician", str(chosen.id))
    ui.flash(f"Cleared the login delay of {chosen.display_name}.")
    st.rerun()
active_label = "Reactivate account" if not chosen.active else "Deactivate account"
if active_col.button(active_label, icon=":material/person_off:", disabled=is_me, help="You cannot deactivate yourself." if is_me else
                     "A deactivated account cannot log in, and every session it has open ends at its next page run."):
    system.set_clinician_active(chosen.id, not chosen.active)
    ctx.store.audit("activate" if not chosen.active else "deactivate", "clinician", str(chosen.id))
    ui.flash(f"{'Reactivated' if not chosen.active else 'Deactivated'} {chosen.display_name}.")
    st.rerun()

with st.form("reset_password", clear_on_submit=True):
    st.caption(ui.literal(f"Set a new password for {chosen.display_name}: every session they have open ends."))
    new_password = st.text_input("Their new password", type="password", help=f"At least {auth.MIN_PASSWORD_LENGTH} characters")
    new_confirmation = st.text_input("Repeat their new password", type="password")
    reset = st.form_submit_button("Set new password")
if reset:
    try:
        auth.reset_password(system, chosen.id, new_password, new_confirmation, session_auth.current_token() if is_me else None)
        system.reset_login_throttle(chosen.username)
        ctx.store.audit("password_reset", "clinician", str(chosen.id))
    except (InvalidInput, StoreError) as error:
        ui.show_error(error)
    else:
        ui.flash(f"Set a new password for {chosen.display_name}; tell them over a channel other than email.")
        st.rerun()
