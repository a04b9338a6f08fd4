import sys

from pi_agent.cli import main

sys.exit(main())
