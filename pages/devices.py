"""Pi agents: register one (its key is shown once), see last heartbeats and which session each is recording."""

import pandas as pd
import streamlit as st

from app import context, sessions, ui
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
            if not name.strip():
                raise InvalidInput("Give the device a name.")
            registration = ctx.store.register_device(name.strip(), room.strip())
        except (InvalidInput, StoreError) as error:
            st.error(str(error))
        else:
            st.success(f"Registered {ui.literal(registration.device.name)}. Copy the key now: it is shown only once (only its hash is stored).")
            st.code(f"PSYA_DEVICE_ID={registration.device.id}\nPSYA_DEVICE_KEY={registration.key}", language="bash")
            st.caption("Put both lines in the Pi's /etc/psychopathology-assistant/agent.env, together with the database settings; "
                       "the agent starts at boot and records whenever a session is live for this device.")

devices = ctx.store.list_devices()
if not devices:
    st.info("No device registered yet.")
    st.stop()
assigned = sessions.assigned_sessions(ctx.store.list_sessions(status="live"))
names = {p.id: p.full_name for p in ctx.store.list_patients(include_archived=True)}
st.dataframe(
    pd.DataFrame(
        [
            {
                "Name": d.name,
                "Room": d.room,
                "Status": "online" if sessions.device_online(d) else "offline",
                "Last heartbeat": ui.format_time(d.last_heartbeat),
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
