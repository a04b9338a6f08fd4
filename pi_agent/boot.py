"""Starting the agent at boot: an idempotent `@reboot` crontab line, or a systemd unit (the sturdier choice: it restarts
the agent if it dies and sends SIGTERM on shutdown, which the agent answers by flushing)."""

from __future__ import annotations

import getpass
import shlex
import subprocess
import sys
from pathlib import Path

from pi_agent.config import DEFAULT_ENV_FILE

CRON_MARKER = "# psychopathology-assistant pi_agent"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class CrontabError(RuntimeError):
    """`crontab` is missing or refused the new table."""


def agent_command(python: str | None = None, env_file: Path = DEFAULT_ENV_FILE, project_root: Path = PROJECT_ROOT) -> str:
    python = python or sys.executable
    return f"cd {shlex.quote(str(project_root))} && {shlex.quote(python)} -m pi_agent run --env-file {shlex.quote(str(env_file))}"


def cron_line(command: str, delay_s: int = 15) -> str:
    # The delay lets the network and the camera come up; the agent copes with neither being ready, but logs less.
    # Output goes to /dev/null: the agent writes its own rotating log file.
    return f"@reboot sleep {delay_s} && {command} >/dev/null 2>&1 {CRON_MARKER}"


def merge_crontab(existing: str, line: str) -> str:
    """`existing` with every earlier agent line replaced by `line`: running install-cron twice changes nothing."""
    kept = [entry for entry in existing.splitlines() if CRON_MARKER not in entry]
    return "\n".join([*kept, line]) + "\n"


def install_cron(line: str, crontab_file: Path | None = None) -> str:
    """Install into the user's crontab (via the `crontab` program) or into `crontab_file`; returns the new table."""
    if crontab_file is not None:
        existing = crontab_file.read_text() if crontab_file.exists() else ""
        table = merge_crontab(existing, line)
        crontab_file.parent.mkdir(parents=True, exist_ok=True)
        crontab_file.write_text(table)
        return table
    try:
        current = subprocess.run(["crontab", "-l"], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise CrontabError("the `crontab` program is missing (sudo apt install cron), or use --crontab-file") from None
    # `crontab -l` exits 1 with "no crontab for <user>" when the user has none yet: that is an empty table.
    existing = current.stdout if current.returncode == 0 else ""
    table = merge_crontab(existing, line)
    written = subprocess.run(["crontab", "-"], input=table, capture_output=True, text=True, timeout=30)
    if written.returncode != 0:
        raise CrontabError(f"crontab refused the new table: {written.stderr.strip()}")
    return table


def systemd_unit(command_python: str | None = None, env_file: Path = DEFAULT_ENV_FILE, user: str | None = None,
                 project_root: Path = PROJECT_ROOT) -> str:
    python = command_python or sys.executable
    return f"""\
# /etc/systemd/system/psya-agent.service
# Install: python -m pi_agent print-systemd | sudo tee /etc/systemd/system/psya-agent.service
#          sudo systemctl daemon-reload && sudo systemctl enable --now psya-agent
[Unit]
Description=Psychopathology Assistant Pi agent (camera -> emotions -> database)
Wants=network-online.target
# Readings are stamped with the Pi's clock, and a Pi without a battery-backed clock boots with a stale time: start after
# NTP has set it (enable it with: sudo systemctl enable systemd-time-wait-sync).
After=network-online.target time-sync.target

[Service]
Type=simple
User={user or getpass.getuser()}
WorkingDirectory={project_root}
EnvironmentFile=-{env_file}
ExecStart={python} -m pi_agent run --env-file {env_file}
# SIGTERM makes the agent spool its last batch and try one final upload before exiting 0.
KillSignal=SIGTERM
TimeoutStopSec=20
Restart=always
RestartSec=5
Nice=5

[Install]
WantedBy=multi-user.target
"""
