"""Short alert sounds through QSoundEffect, or silence when there is no audio.

QtMultimedia is imported only here and only when asked for: a machine without an audio
library or device gets a `SilentPlayer`, never an error.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from PySide6.QtCore import QLoggingCategory, QObject, QUrl

from desktop.ui.resources import resource

log = logging.getLogger(__name__)
SOUNDS = {"populated": "populated.wav", "offers": "offers.wav"}


class SoundPlayer(Protocol):
    available: bool
    reason: str

    def play(self, name: str) -> None: ...


class SilentPlayer:
    """What plays when nothing can: remembers why, for the settings dialog."""

    available = False

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.played: list[str] = []

    def play(self, name: str) -> None:
        self.played.append(name)


class EffectPlayer(QObject):
    """One preloaded QSoundEffect per bundled sound."""

    available = True
    reason = ""

    def __init__(self, effect_class: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._effects: dict[str, Any] = {}
        for name, file in SOUNDS.items():
            effect = effect_class(self)
            effect.setSource(QUrl.fromLocalFile(str(resource(file))))
            effect.setVolume(0.6)
            self._effects[name] = effect

    def play(self, name: str) -> None:
        effect = self._effects.get(name)
        if effect is not None:
            effect.play()


def create_player(parent: QObject | None = None) -> EffectPlayer | SilentPlayer:
    """An `EffectPlayer` when QtMultimedia loads and an audio output exists."""
    QLoggingCategory.setFilterRules("qt.multimedia.*=false")  # probing is noisy, not broken
    try:
        from PySide6.QtMultimedia import QMediaDevices, QSoundEffect
    except (ImportError, OSError) as exc:  # e.g. libpulse missing
        log.info("no sound: QtMultimedia is unavailable (%s)", exc)
        return SilentPlayer(f"Sound is unavailable on this computer ({exc}).")
    try:
        if not QMediaDevices.audioOutputs():
            return SilentPlayer("Sound is unavailable: no audio output device was found.")
        return EffectPlayer(QSoundEffect, parent)
    except Exception as exc:
        log.info("no sound: %s", exc)
        return SilentPlayer(f"Sound is unavailable ({exc}).")
