"""Qt-free, I/O-free shared core of Campaign Pulse: topics, events, wire format, stats.

`version()` (also `pulse_core.__version__`) is the one version that `pulse --version`,
`GET /api` and the desktop's About show; it is read from the installed package's metadata,
whose single source is `version` in pyproject.toml.
"""

from __future__ import annotations

import functools

DISTRIBUTION = "campaign-pulse"
UNKNOWN_VERSION = "0+unknown"


@functools.cache
def version() -> str:
    """The installed version of Campaign Pulse, or "0+unknown" when it is not installed
    (run from a bare source tree, or a bundle built without the package's metadata)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as distribution_version

    try:
        return distribution_version(DISTRIBUTION)
    except PackageNotFoundError:
        return UNKNOWN_VERSION


def __getattr__(name: str) -> str:
    # `__version__` is looked up only when asked for: importing the core reads no metadata.
    if name == "__version__":
        return version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
