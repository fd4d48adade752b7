"""The window's grid kept on disk, and shown stale while the server cannot be reached.

`GridKeeper` writes the grid to the account's cache file (at most every few seconds while it
changes, and on close) with the marketer topic's seq that it reflects. A window opened from
that file says "Offline — data as of 09:12", dims its rows, and turns live by itself once the
live connection has resumed from the saved seq.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime

from PySide6.QtCore import QObject, QTimer, Signal

from desktop.client.grid_cache import CachedGrid, CacheWriter, GridCache, GridCursor, as_of_text
from desktop.client.live import LinkState, LinkStatus
from desktop.client.models import Campaign, EventFrame
from desktop.client.store import CampaignStore, Change
from desktop.ui.bridge import ClientBridge
from desktop.ui.grid import CampaignGrid
from desktop.ui.status import ConnectionStatus

log = logging.getLogger(__name__)
WRITE_EVERY_MS = 3000


def stale_notice(as_of: str) -> str:
    return (
        f"Offline — data as of {as_of}. These are your campaigns as this computer last saw "
        "them; they update by themselves when the server answers again."
    )


class GridKeeper(QObject):
    """Saves one window's grid for its account, and shows a saved grid until live."""

    staleChanged = Signal(bool)

    def __init__(
        self,
        bridge: ClientBridge,
        store: CampaignStore,
        grid: CampaignGrid,
        status: ConnectionStatus,
        cache: GridCache | None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        assert bridge.user is not None, "sign in first"
        self.bridge = bridge
        self.user = replace(bridge.user, token="")  # never on disk
        self.topic = bridge.user.marketer_topic
        self.store = store
        self.grid = grid
        self.status = status
        self.cursor = GridCursor()
        self.stale = False
        self.as_of: datetime | None = None  # when a saved grid was last live
        self.writes = 0
        self._writer = CacheWriter(cache) if cache is not None else None
        self._connected = False
        self._lost_at: datetime | None = None
        self._dirty = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(WRITE_EVERY_MS)
        self._timer.timeout.connect(self.write)
        store.add_listener(self._on_store_change)
        bridge.subscribed.connect(self._on_subscribed)
        bridge.campaignsLoaded.connect(self._on_loaded)
        bridge.campaignFetched.connect(self._on_fetched)
        bridge.campaignGone.connect(self._on_gone)
        bridge.statusChanged.connect(self._on_status)

    # ---- a saved grid -------------------------------------------------------------------

    def show_cached(self, cached: CachedGrid) -> None:
        """Fill the grid from `cached`, marked stale until the live connection resumes."""
        self.cursor = GridCursor(cached.seq)
        self.as_of = cached.as_of
        self.grid.load(cached.campaigns)
        self._dirty = False  # nothing new to write yet
        self._timer.stop()
        self.set_stale(True)

    def set_stale(self, stale: bool) -> None:
        self.stale = stale
        as_of = as_of_text(self.as_of) if stale and self.as_of is not None else None
        if stale and as_of is None:
            as_of = "an earlier session"
        self.grid.set_stale(stale_notice(as_of) if as_of is not None else None)
        self.status.set_stale(as_of)
        if not stale and self._dirty:
            self._changed()
        self.staleChanged.emit(stale)

    # ---- following the grid -------------------------------------------------------------

    def applied(self, frames: Iterable[EventFrame], fetch: Iterable[int]) -> None:
        """A batch of marketer-topic events went into the grid."""
        self.cursor.applied(frames, fetch)
        self._changed()

    def _on_subscribed(self, topic: str, seq: int, resumed: bool) -> None:
        if topic != self.topic:
            return
        self.cursor.subscribed(seq, resumed)
        if self.stale:
            self.set_stale(False)  # resumed: the missed events follow at once

    def _on_loaded(self, _campaigns: list[Campaign]) -> None:
        self.cursor.reloaded()
        self._changed()

    def _on_fetched(self, campaign: Campaign) -> None:
        self.cursor.fetched(campaign)

    def _on_gone(self, campaign_id: int) -> None:
        self.cursor.gone(campaign_id)

    def _on_store_change(self, _change: Change) -> None:
        self._changed()

    def _on_status(self, status: LinkStatus) -> None:
        connected = status.state is LinkState.CONNECTED
        if self._connected and not connected:
            self._lost_at = datetime.now(UTC)
        self._connected = connected

    def _changed(self) -> None:
        self._dirty = True
        if self._writer is not None and not self.stale and not self._timer.isActive():
            self._timer.start()

    # ---- writing ------------------------------------------------------------------------

    def write(self) -> None:
        """Save the grid now (in the writer's thread), if it is worth saving."""
        self._timer.stop()
        seq = self.cursor.seq
        if self._writer is None or self.stale or not self.grid.loaded or seq is None:
            return
        if self._connected:
            as_of = datetime.now(UTC)
        else:
            as_of = self._lost_at or self.as_of or datetime.now(UTC)
        grid = CachedGrid(self.user, seq, as_of, list(self.store.rows))
        self._writer.write(self.bridge.server_url, grid)
        self._dirty = False
        self.writes += 1

    def close(self) -> None:
        """The last write (the grid at close, live until now), then stop."""
        if self._writer is None:
            return
        if self._dirty or self._connected:
            self.write()
        self._timer.stop()
        self._writer.close()
        self._writer = None
        self.store.remove_listener(self._on_store_change)
