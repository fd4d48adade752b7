"""The one place that decides where an event goes: flash, tray, desktop notification, sound."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from desktop.client.flashes import Flash
from desktop.client.models import EventFrame
from pulse_core.names import EventName, UpdateReason


class AlertKind(StrEnum):
    """Events a user can choose to be alerted about."""

    TARGET_POPULATED = "target_populated"
    OFFERS_CREATED = "offers_created"
    REFRESH_FINISHED = "refresh_finished"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    AlertKind.TARGET_POPULATED: "Target populated",
    AlertKind.OFFERS_CREATED: "Offers created",
    AlertKind.REFRESH_FINISHED: "Offer refresh finished with nothing new",
}

SOUND_FOR = {
    AlertKind.TARGET_POPULATED: "populated",
    AlertKind.OFFERS_CREATED: "offers",
    AlertKind.REFRESH_FINISHED: "populated",
}


def alert_kind(frame: EventFrame) -> AlertKind | None:
    if frame.event == EventName.TARGET_POPULATED:
        return AlertKind.TARGET_POPULATED
    if frame.event == EventName.OFFERS_CREATED:
        return AlertKind.OFFERS_CREATED
    if frame.reason == UpdateReason.OFFERS_REFRESHED:
        return AlertKind.REFRESH_FINISHED
    return None


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """One user's alert choices. Notifications and sounds are opt-in."""

    desktop_notifications: bool = False
    sound: bool = False
    kinds: frozenset[AlertKind] = field(default_factory=lambda: frozenset(AlertKind))
    close_to_tray: bool = False
    muted: bool = False


@dataclass(frozen=True, slots=True)
class WindowContext:
    """What the user can see right now."""

    visible: bool = True
    focused: bool = True
    tray_available: bool = True


@dataclass(frozen=True, slots=True)
class AlertDecision:
    flash: bool = False
    notify: bool = False
    unread: bool = False
    sound: str | None = None


class AlertRouter:
    """Routes each flash-worthy event by the user's settings and what they can see."""

    def __init__(self, settings: AlertSettings | None = None) -> None:
        self.settings = settings or AlertSettings()

    def route(self, kind: AlertKind, flash: Flash | None, context: WindowContext) -> AlertDecision:
        settings = self.settings
        wanted = kind in settings.kinds and not settings.muted
        away = not (context.visible and context.focused)
        return AlertDecision(
            flash=flash is not None,
            notify=(
                flash is not None
                and wanted
                and away
                and settings.desktop_notifications
                and context.tray_available
            ),
            unread=flash is not None and wanted and away,
            sound=SOUND_FOR[kind] if flash is not None and wanted and settings.sound else None,
        )
