"""Paths of the files bundled with the app: icon and alert sounds."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QIcon

RESOURCES = Path(__file__).resolve().parent / "resources"


def resource(name: str) -> Path:
    return RESOURCES / name


def app_icon() -> QIcon:
    icon = QIcon()
    for name in ("icon.svg", "icon-256.png", "icon-64.png"):
        path = resource(name)
        if path.exists():
            icon.addFile(str(path))
    return icon
