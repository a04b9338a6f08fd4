"""Pi agents: register one (its env file is shown once), see last heartbeats, each device's measured clock offset (a
warning above app.devices.CLOCK_OFFSET_WARNING) and which session each is recording; administrators revoke a lost or
stolen one."""

import pandas as pd
import streamlit as st

from app import context, devices as device_service, sessions, ui
from store.errors import InvalidInput, StoreError

ctx = context.require_clinician()
st.title("Devices")
ui.disclaimer()

with st.expander("Register a Pi device", icon=":material/add:", expanded=False):
    with st.form("register_device", clear_on_submit=True):
        name = st.text_input("Name", placeholder="e.g. pi-room-2")
        room = st.text_input("Room", placeholder="e.g. Consulting room 2")
        register = st.form_submit_button("Register", type="primary")
    if register:
        try:
            provisioned = device_service.register_device(ctx.store, ctx.settings, name, room)
        except (InvalidInput, StoreError) as error:
            ui.show_error(error)
        else:
            st.success(f"Registered {ui.literal(provisioned.registration.device.name)}. Copy its env file now: it is shown only once "
                       "(only a hash of the key is stored).")
            st.code(provisioned.env_text, language="bash")
            st.caption("Save it on the Pi as /etc/psychopathology-assistant/agent.env (mode 0600). These credentials can "
                       "only send heartbeats and readings for this device's live session; they read nothing.")

devices = ctx.store.list_devices()
if not devices:
    st.info("No device registered yet.")
    st.stop()
assigned = sessions.assigned_sessions(ctx.store.list_sessions(status="live"))
names = {p.id: p.full_name for p in ctx.store.list_patients(include_archived=True)}
clocks = {d.id: device_service.clock_status(d) for d in devices}
for d in devices:
    if clocks[d.id].warning and d.revoked_at is None:
        st.warning(ui.literal(clocks[d.id].warning), icon=":material/schedule:")
st.dataframe(
    pd.DataFrame(
        [
            {
                "Name": d.name,
                "Room": d.room,
                "Status": device_service.device_status(d, sessions.device_online(d)),
                "Last heartbeat": ui.format_time(d.last_heartbeat),
                "Clock": clocks[d.id].text,
                "Recording": names.get(assigned[d.id].patient_id, "a session") if d.id in assigned else "—",
                "Device id": str(d.id),
            }
            for d in devices
        ]
    ),
    hide_index=True,
    width="stretch",
)
for device_id, session in assigned.items():
    st.page_link("pages/live.py", label=f"Live: {ui.literal(names.get(session.patient_id, 'session'))}", query_params={"session": str(session.id)})

active = [d for d in devices if d.revoked_at is None]
if ctx.is_admin and active:
    with st.expander("Revoke a lost or stolen device", icon=":material/block:"):
        labels = {f"{d.name} ({d.room})" if d.room else d.name: d.id for d in active}
        chosen = st.selectbox("Device", list(labels), key="revoke_device")
        if st.button("Revoke", key="revoke_device_button"):
            try:
                device_service.revoke_device(ctx.store, labels[chosen])
            except StoreError as error:
                ui.show_error(error)
            else:
                st.success(f"Revoked {ui.literal(chosen)}: its credentials no longer work. Register a new device for that Pi.")
