"""The user's remembered choices, in QSettings, behind a small typed object that is passed in."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from PySide6.QtCore import QByteArray, QSettings

from desktop.client.accounts import Accounts
from desktop.client.alerts import AlertKind, AlertSettings

DEFAULT_SERVER = "http://127.0.0.1:8765"


def _as_bool(value: object, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("true", "1", "yes")


def _user_key(email: str) -> str:
    return "users/" + "".join(c if c.isalnum() else "_" for c in email.lower())


def _account_key(server_url: str, email: str) -> str:
    """One settings group per account: a server and an email (one key, whatever they hold)."""
    account = f"{server_url.strip().rstrip('/').lower()} {email.strip().lower()}"
    return "accounts/" + quote(account, safe="")


@dataclass(frozen=True, slots=True)
class SavedColumns:
    """A grid's saved column layout: format version, the columns it knew, the header state."""

    version: int
    fields: tuple[str, ...]  # the model's columns, in model order, when it was saved
    header: QByteArray  # QHeaderView.saveState(): order, widths, hidden, sort


class Preferences:
    """Server and email of the last sign-in; alert settings per user; window geometry;
    column layouts per account."""

    def __init__(self, settings: QSettings) -> None:
        self._settings = settings

    @property
    def server_url(self) -> str:
        return str(self._settings.value("login/server_url", DEFAULT_SERVER) or DEFAULT_SERVER)

    @server_url.setter
    def server_url(self, value: str) -> None:
        self._settings.setValue("login/server_url", value)

    @property
    def email(self) -> str:
        return str(self._settings.value("login/email", "") or "")

    @email.setter
    def email(self, value: str) -> None:
        self._settings.setValue("login/email", value)

    @property
    def remember_password(self) -> bool:
        return _as_bool(self._settings.value("login/remember_password"), False)

    @remember_password.setter
    def remember_password(self, value: bool) -> None:
        self._settings.setValue("login/remember_password", value)

    @property
    def accounts(self) -> Accounts:
        """The accounts signed in to on this computer, the last used first."""
        return Accounts.from_json(str(self._settings.value("login/accounts", "") or ""))

    @accounts.setter
    def accounts(self, value: Accounts) -> None:
        self._settings.setValue("login/accounts", value.to_json())

    def alert_settings(self, email: str) -> AlertSettings:
        base = _user_key(email)
        value = self._settings.value
        stored = value(f"{base}/alert_kinds")
        if stored is None:
            kinds = frozenset(AlertKind)
        else:
            names = str(stored).split(",")
            kinds = frozenset(AlertKind(n) for n in names if n in set(AlertKind))
        return AlertSettings(
            desktop_notifications=_as_bool(value(f"{base}/desktop_notifications"), False),
            sound=_as_bool(value(f"{base}/sound"), False),
            kinds=kinds,
            close_to_tray=_as_bool(value(f"{base}/close_to_tray"), False),
            muted=_as_bool(value(f"{base}/muted"), False),
        )

    def save_alert_settings(self, email: str, settings: AlertSettings) -> None:
        base = _user_key(email)
        self._settings.setValue(f"{base}/desktop_notifications", settings.desktop_notifications)
        self._settings.setValue(f"{base}/sound", settings.sound)
        self._settings.setValue(f"{base}/alert_kinds", ",".join(sorted(settings.kinds)))
        self._settings.setValue(f"{base}/close_to_tray", settings.close_to_tray)
        self._settings.setValue(f"{base}/muted", settings.muted)
        self._settings.sync()

    def notifications_offered(self, email: str) -> bool:
        """Whether `email` has answered the first-run offer of desktop notifications."""
        return _as_bool(self._settings.value(f"{_user_key(email)}/notifications_offered"), False)

    def set_notifications_offered(self, email: str, offered: bool = True) -> None:
        """Record the answer (scripts and tests pre-set it to skip the offer)."""
        self._settings.setValue(f"{_user_key(email)}/notifications_offered", offered)

    @property
    def theme(self) -> str:
        """View → Theme: "system", "light" or "dark"."""
        return str(self._settings.value("view/theme", "system") or "system")

    @theme.setter
    def theme(self, value: str) -> None:
        self._settings.setValue("view/theme", value)

    def window_state(self, name: str) -> QByteArray | None:
        value = self._settings.value(f"window/{name}")
        return value if isinstance(value, QByteArray) else None

    def save_window_state(self, name: str, state: QByteArray) -> None:
        self._settings.setValue(f"window/{name}", state)

    def column_layout(self, server_url: str, email: str) -> SavedColumns | None:
        base = _account_key(server_url, email) + "/columns"
        header = self._settings.value(f"{base}/header")
        if not isinstance(header, QByteArray):
            return None
        try:
            version = int(str(self._settings.value(f"{base}/version")))
        except ValueError:
            return None
        fields = str(self._settings.value(f"{base}/fields", "") or "")
        return SavedColumns(version, tuple(fields.split(",")), header)

    def save_column_layout(self, server_url: str, email: str, layout: SavedColumns | None) -> None:
        """Keep `layout` for the account; None forgets it."""
        base = _account_key(server_url, email) + "/columns"
        if layout is None:
            self._settings.remove(base)
            return
        self._settings.setValue(f"{base}/version", layout.version)
        self._settings.setValue(f"{base}/fields", ",".join(layout.fields))
        self._settings.setValue(f"{base}/header", layout.header)

    def sync(self) -> None:
        self._settings.sync()
