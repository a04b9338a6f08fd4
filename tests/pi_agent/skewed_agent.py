"""`python -m tests.pi_agent.skewed_agent SECONDS ARGS...`: the real agent (`python -m pi_agent ARGS...`) on a device whose
clock is SECONDS ahead (negative: behind). Only the device clock is replaced (pi_agent.clock.device_now, the one place
the agent reads it); everything else is the shipped agent."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone

import pi_agent.clock


def main() -> int:
    ahead = timedelta(seconds=float(sys.argv[1]))
    pi_agent.clock.device_now = lambda: datetime.now(timezone.utc) + ahead
    from pi_agent.cli import main as agent_main

    return agent_main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
