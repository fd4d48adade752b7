"""A start-up check for Qt bindings that would crash the app later.

PySide6 6.12.0 on CPython 3.11 returns `None` (and `True` from `Signal.emit`) without
owning a reference, so every call such as `label.setText()` takes one away; after some
thousands of calls CPython aborts ("deallocating None"). CPython 3.12 made these objects
immortal, which hides the bug there. We check the behaviour itself, not a version list.
"""

from __future__ import annotations

import sys

import PySide6
from PySide6.QtCore import QObject, Signal

CALLS = 32


class _Probe(QObject):
    fired = Signal()


def binding_problem() -> str | None:
    """A message saying how to fix the installed PySide6, or None when it is sound."""
    probe = _Probe()
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(CALLS):
        probe.setObjectName("probe")  # returns None
        probe.fired.emit()  # returns True
    lost = max(none_before - sys.getrefcount(None), true_before - sys.getrefcount(True))
    if lost < CALLS // 2:
        return None
    return (
        f"PySide6 {PySide6.__version__} loses references on Python "
        f"{sys.version_info.major}.{sys.version_info.minor} and would crash this app. "
        "Install another version: pip install 'PySide6-Essentials!=6.12.0' "
        "'PySide6-Addons!=6.12.0' (or use Python 3.12 or later)."
    )
