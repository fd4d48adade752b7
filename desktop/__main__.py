"""`python -m desktop`: the desktop app alone (the packaged app starts here too)."""

import sys

from desktop.main import main

sys.exit(main())
