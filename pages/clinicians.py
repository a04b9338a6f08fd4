"""Clinician accounts (administrators): list them and add colleagues."""

import pandas as pd
import streamlit as st

from app import auth, context, ui
from store.errors import InvalidInput, StoreError

ctx = context.require_admin()
st.title("Clinicians")
ui.show_flash()

with st.form("new_clinician", clear_on_submit=True):
    display_name = st.text_input("Full name")
    username = st.text_input("Username")
    role = st.radio("Role", ["clinician", "admin"], horizontal=True)
    password = st.text_input("Initial password", type="password", help=f"At least {auth.MIN_PASSWORD_LENGTH} characters")
    confirmation = st.text_input("Repeat the password", type="password")
    create = st.form_submit_button("Add clinician", type="primary")
if create:
    try:
        # Accounts are created by the system actor (the store allows nothing else); the admin check is above, and the
        # admin's own audit entry records who did it.
        created = auth.create_clinician(context.system_store(ctx.settings), username, display_name, password, confirmation, role)
        ctx.store.audit("create", "clinician", str(created.id))
    except (InvalidInput, StoreError) as error:
        st.error(str(error))
    else:
        ui.flash(f"Added {created.display_name} ({created.role}).")
        st.rerun()

clinicians = context.system_store(ctx.settings).list_clinicians()
st.dataframe(
    pd.DataFrame(
        [
            {"Name": c.display_name, "Username": c.username, "Role": c.role, "Failed logins": c.failed_logins, "Locked until": ui.format_time(c.locked_until) if c.locked_until else "—"}
            for c in clinicians
        ]
    ),
    hide_index=True,
    width="stretch",
)
