"""Log in, or on an empty database create the first (admin) clinician."""

from app import context, session_auth, ui

settings = context.load_settings()
store = context.system_store(settings)
if store.count_clinicians() == 0:
    session_auth.first_run_setup_form(store, settings)
else:
    session_auth.login_form(store, settings)
ui.disclaimer()
