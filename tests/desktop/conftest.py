"""Desktop tests: Qt offscreen, settings in a temporary file, no real keyring, no real tray."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before anything imports Qt
os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from desktop.client.models import Campaign, EventFrame, UserSession
from pulse_core.stats import CampaignStats
from tests.backend import ALICE, LiveBackend
from tests.netproxy import TcpProxy


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.desktop)


@pytest.fixture(autouse=True)
def _grid_cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's saved grids go to the test's own directory, never the user's cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def preferences(tmp_path: Path, qapp: Any) -> Any:
    from PySide6.QtCore import QSettings

    from desktop.ui.preferences import Preferences

    return Preferences(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))


def make_campaign(
    campaign_id: int,
    title: str | None = None,
    *,
    state: str = "active",
    pending: int = 0,
    spend: float = 0.0,
    population_status: str = "populated",
    as_of_seq: int | None = None,
) -> Campaign:
    return Campaign.from_wire(
        {
            "id": campaign_id,
            "title": title or f"Campaign {campaign_id:05d}",
            "state": state,
            "target": {"id": 1, "title": "Outdoor fans", "population_status": population_status},
            "stats": {"pending_offers": pending, "spend_to_date": spend},
            "as_of_seq": as_of_seq,
        }
    )


def make_event(
    campaign_id: int,
    seq: int,
    event: str = "campaign_updated",
    *,
    topic: str = "marketer:1:campaigns",
    stats: CampaignStats | None = None,
    **extra: Any,
) -> EventFrame:
    data: dict[str, Any] = {
        "type": "event",
        "topic": topic,
        "seq": seq,
        "event": event,
        "campaign_id": campaign_id,
        "ts": "2025-01-01T00:00:00.000Z",
        **extra,
    }
    if stats is not None:
        data["stats"] = stats.to_wire()
    return EventFrame.from_wire(data)


@pytest.fixture
def network(live_backend: LiveBackend) -> Iterator[TcpProxy]:
    """The network between the desktop app and the server, which a test can cut."""
    proxy = TcpProxy(live_backend.settings.host, live_backend.settings.port)
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture
def offline_bridge(qapp: Any) -> Iterator[Any]:
    """A bridge whose session is 'signed in' as alice but never connects: tests feed it."""
    from desktop.ui.bridge import ClientBridge
    from desktop.ui.runner import AsyncRunner

    runner = AsyncRunner()
    runner.start_loop()
    bridge = ClientBridge(runner, "http://127.0.0.1:9")
    bridge.session.user = UserSession("token", 1, ALICE, 1, "Acme Outdoor")
    bridge.session.rest.token = "token"
    yield bridge
    bridge.close()
    runner.stop()


@pytest.fixture
def main_window(qtbot: Any, offline_bridge: Any, preferences: Any) -> Iterator[Any]:
    from desktop.ui.main_window import MainWindow
    from desktop.ui.sounds import SilentPlayer

    window = MainWindow(offline_bridge, preferences, sound_player=SilentPlayer("test"))
    qtbot.addWidget(window)
    window.show()
    yield window
    window.shutdown()


CampaignFactory = Callable[..., Campaign]
