"""What credentials the agent accepts (docs/security.md, "Stolen Raspberry Pi"): never a service key; for Supabase the
anon key plus a device token; a DATABASE_URL that is not a device login works but is warned about."""

from __future__ import annotations

import base64
import json
import logging
import uuid

import pytest

from pi_agent.config import AgentConfig, ConfigError

DEVICE = {"PSYA_DEVICE_ID": str(uuid.uuid4()), "PSYA_DEVICE_KEY": "k" * 43}


def fake_jwt(role: str) -> str:
    payload = base64.urlsafe_b64encode(json.dumps({"role": role}).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJIUzI1NiJ9.{payload}.signature"


def config(tmp_path, **values: str) -> AgentConfig:
    return AgentConfig.load(env_file=None, environ={"PSYA_AGENT_ENV_FILE": str(tmp_path / "none.env"), **DEVICE, **values})


def test_the_service_key_is_refused_on_a_pi(tmp_path, monkeypatch):
    monkeypatch.setenv("PSYA_AGENT_ENV_FILE", str(tmp_path / "none.env"))
    for key in (fake_jwt("service_role"), "sb_secret_abcdef"):
        with pytest.raises(ConfigError, match="service key"):
            config(tmp_path, SUPABASE_URL="https://x.supabase.co", SUPABASE_KEY=key,
                   PSYA_DEVICE_TOKEN=fake_jwt("psya_device")).validate_for_recording()


def test_supabase_needs_a_device_token(tmp_path, monkeypatch):
    monkeypatch.setenv("PSYA_AGENT_ENV_FILE", str(tmp_path / "none.env"))
    with pytest.raises(ConfigError, match="PSYA_DEVICE_TOKEN is required"):
        config(tmp_path, SUPABASE_URL="https://x.supabase.co", SUPABASE_KEY=fake_jwt("anon")).validate_for_recording()
    with pytest.raises(ConfigError, match="not a device token"):
        config(tmp_path, SUPABASE_URL="https://x.supabase.co", SUPABASE_KEY=fake_jwt("anon"),
               PSYA_DEVICE_TOKEN=fake_jwt("authenticated")).validate_for_recording()
    config(tmp_path, SUPABASE_URL="https://x.supabase.co", SUPABASE_KEY=fake_jwt("anon"),
           PSYA_DEVICE_TOKEN=fake_jwt("psya_device")).validate_for_recording()


def test_an_owner_database_url_is_warned_about_and_a_device_login_is_not(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("PSYA_AGENT_ENV_FILE", str(tmp_path / "none.env"))
    with caplog.at_level(logging.WARNING, logger="pi_agent.config"):
        config(tmp_path, DATABASE_URL="postgresql://postgres:pw@db:5432/psya").validate_for_recording()
    assert "not as this device's own login" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pi_agent.config"):
        config(tmp_path, DATABASE_URL=f"postgresql://psya_dev_{'0' * 32}:pw@db:5432/psya").validate_for_recording()
    assert caplog.text == ""
