"""The desktop's Qt-free session against a real server: a fetch lost offline is made again."""

from __future__ import annotations

import asyncio

import pytest

from desktop.client.errors import UnreachableError
from desktop.client.models import Campaign
from desktop.client.session import PulseSession
from pulse_core.protocol import Backoff
from tests.backend import ALICE, DEMO_PASSWORD, LiveBackend
from tests.netproxy import TcpProxy

from .test_live_client import Recorder


class SessionRecorder(Recorder):
    """Everything a session reports, including the campaigns it loads and fetches."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[list[Campaign]] = []
        self.fetched: list[Campaign] = []

    def on_campaigns(self, campaigns: list[Campaign]) -> None:
        self.loaded.append(campaigns)
        self._poke()

    def on_campaign(self, campaign: Campaign) -> None:
        self.fetched.append(campaign)
        self._poke()

    def on_campaign_gone(self, campaign_id: int) -> None:
        self._poke()


@pytest.mark.faults
async def test_a_fetch_that_failed_offline_is_made_again_once_back(
    live_backend: LiveBackend, network: TcpProxy
) -> None:
    recorder = SessionRecorder()
    session = PulseSession(
        f"http://127.0.0.1:{network.port}", recorder, backoff=Backoff(initial=0.1, maximum=0.5)
    )
    try:
        await session.login(ALICE, DEMO_PASSWORD)
        await session.start()
        await recorder.until(lambda: bool(recorder.loaded and recorder.subscribed))
        campaign_id = recorder.loaded[-1][0].id
        network.cut()
        with pytest.raises(UnreachableError):
            await session.fetch_campaign(campaign_id)  # as after an event, just as it drops
        assert recorder.fetched == []
        network.restore()
        # Back online, the marketer topic is subscribed again, and the lost fetch is made.
        await recorder.until(lambda: any(c.id == campaign_id for c in recorder.fetched), 15)
        resumed = [s for s in recorder.subscribed if s[0] == session.marketer_topic]
        assert len(resumed) == 2 and resumed[-1][2] is True
        assert [c.id for c in recorder.fetched] == [campaign_id]
    finally:
        await asyncio.wait_for(session.close(), 10)
