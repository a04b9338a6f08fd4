"""Consent withdrawal against a real `python -m pi_agent run` process writing into a real PostgreSQL: the withdrawal ends
the patient's live session in the database, the agent sees the end on its next poll (the same path as a clinician ending
the session) and stops writing; nothing captured after the end is stored, and no new session can start."""

from __future__ import annotations

from datetime import date

import pytest

from store.errors import PermissionDenied
from tests.pi_agent.test_agent_run import RunningAgent, assert_readings_are_sound, stored, wait_until

pytestmark = pytest.mark.slow


def test_withdrawal_ends_the_live_session_and_the_agent_stops_writing(clinic, face_clip, model_path, tmp_path):
    session = clinic.start_session()
    agent = RunningAgent(clinic, tmp_path, face_clip, model_path)
    try:
        agent.wait_for_output(f"session {session.id} is live", 60)
        wait_until(lambda: len(stored(clinic, session.id)) >= 6, 90, "6 readings in the database")

        clinic.clinician.record_consent(clinic.patient_id, False, date.today(), "facial analysis during sessions")

        ended = clinic.clinician.get_session(session.id)
        assert ended.status == "ended" and ended.ended_at is not None
        agent.wait_for_output("no live session for this device: idle", 30)  # polled every 0.5 s here
        wait_until(lambda: agent.spool_totals().pending == 0, 30, "the agent's spool to settle")
        with pytest.raises(PermissionDenied, match="not consented"):
            clinic.start_session()
        code = agent.terminate()
    finally:
        if agent.process.poll() is None:
            agent.kill()
    assert code == 0, agent.output()
    readings = stored(clinic, session.id)
    assert_readings_are_sound(readings)
    assert all(r.captured_at <= ended.ended_at for r in readings)  # stop means stop: nothing after the end
    totals = agent.spool_totals()
    assert totals.pending == 0 and totals.acknowledged + totals.rejected == totals.spooled
    assert len(readings) == totals.acknowledged
