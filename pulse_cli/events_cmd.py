"""(being written)"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

AddCommand = Callable[..., Any]


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add this module's subcommands to `pulse`."""
