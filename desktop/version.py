"""The version the desktop app shows (About, the log's first line)."""

from __future__ import annotations

import pulse_core

UNKNOWN = "0+unknown"


def app_version() -> str:
    """`pulse_core.version()` where the core has it, else the installed package's metadata."""
    core_version = getattr(pulse_core, "version", None)
    if callable(core_version):
        return str(core_version())
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("campaign-pulse")
    except PackageNotFoundError:
        return UNKNOWN
