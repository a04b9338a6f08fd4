"""Starting at boot: install-cron is idempotent and keeps the user's other lines; print-systemd prints a usable unit."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from pi_agent.boot import CRON_MARKER

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pi_agent", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, timeout=60)


def test_install_cron_into_a_file_is_idempotent_and_keeps_other_lines(tmp_path):
    crontab = tmp_path / "crontab"
    crontab.write_text("MAILTO=\"\"\n0 3 * * * /usr/bin/backup\n")
    env_file = tmp_path / "agent.env"
    for _ in range(2):
        result = run_cli("install-cron", "--crontab-file", str(crontab), "--env-file", str(env_file))
        assert result.returncode == 0, result.stderr
    lines = crontab.read_text().splitlines()
    assert lines[:2] == ['MAILTO=""', "0 3 * * * /usr/bin/backup"]
    agent_lines = [line for line in lines if CRON_MARKER in line]
    assert len(agent_lines) == 1
    line = agent_lines[0]
    assert line.startswith("@reboot ")
    assert f"-m pi_agent run --env-file {env_file}" in line
    assert sys.executable in line


def test_install_cron_uses_the_crontab_program(tmp_path):
    # A fake `crontab` that keeps its table in a file, as the real one keeps it in /var/spool/cron.
    table = tmp_path / "table"
    fake = tmp_path / "bin" / "crontab"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "-l" ]; then [ -f {table} ] && cat {table} && exit 0; echo "no crontab for user" >&2; exit 1; fi\n'
        f'if [ "$1" = "-" ]; then cat > {table}; exit 0; fi\n'
        "exit 2\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    path = f"{fake.parent}:{os.environ['PATH']}"
    first = run_cli("install-cron", env={"PATH": path})
    assert first.returncode == 0, first.stderr
    once = table.read_text()
    assert run_cli("install-cron", env={"PATH": path}).returncode == 0
    assert table.read_text() == once
    assert once.count(CRON_MARKER) == 1 and once.startswith("@reboot ")


def test_install_cron_without_crontab_program_says_so(tmp_path):
    empty_bin = tmp_path / "empty"
    empty_bin.mkdir()
    result = subprocess.run([sys.executable, "-m", "pi_agent", "install-cron"], cwd=ROOT, capture_output=True,
                            text=True, env={"PATH": str(empty_bin), "PYTHONPATH": str(ROOT)}, timeout=60)
    assert result.returncode != 0
    assert "crontab" in result.stderr and "--crontab-file" in result.stderr


def test_print_systemd_prints_a_restarting_unit_that_stops_with_sigterm(tmp_path):
    result = run_cli("print-systemd", "--env-file", str(tmp_path / "agent.env"), "--user", "pi")
    assert result.returncode == 0
    unit = result.stdout
    for expected in ("[Unit]", "[Service]", "[Install]", "User=pi", "Restart=always", "KillSignal=SIGTERM",
                     f"EnvironmentFile=-{tmp_path / 'agent.env'}", "-m pi_agent run --env-file", "WantedBy=multi-user.target"):
        assert expected in unit
