"""`python -m pulse_cli`: the same as the `pulse` command."""

import sys

from pulse_cli.main import main

sys.exit(main())
