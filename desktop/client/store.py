"""The campaigns a window shows, in row order, emitting plain change events.

The store knows nothing of Qt: a table model listens to its `Change` events and turns them
into row inserts and `dataChanged` for exactly the fields that changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields

from desktop.client.models import Campaign, EventFrame
from pulse_core.stats import CampaignStats

STAT_FIELDS = tuple(f.name for f in fields(CampaignStats) if f.name != "bands")
CAMPAIGN_FIELDS = (
    "title",
    "state",
    "target_title",
    "population_status",
    "description",
    "launched_at",
    "deactivated_at",
    "starts_at",
    "ends_at",
    "bands",
)


@dataclass(frozen=True, slots=True)
class RowsInserted:
    """Rows `first..last` are new. `done` is False just before, True just after the change."""

    first: int
    last: int
    done: bool = True


@dataclass(frozen=True, slots=True)
class RowsRemoved:
    """Rows `first..last` are gone. `done` is False just before, True just after the change."""

    first: int
    last: int
    done: bool = True


@dataclass(frozen=True, slots=True)
class RowChanged:
    row: int
    campaign_id: int
    fields: frozenset[str]


Change = RowsInserted | RowsRemoved | RowChanged
Listener = Callable[[Change], None]


def changed_fields(old: Campaign, new: Campaign) -> frozenset[str]:
    """The names (campaign fields and stat fields) whose values differ."""
    names = {name for name in STAT_FIELDS if getattr(old.stats, name) != getattr(new.stats, name)}
    if old.stats.bands != new.stats.bands:
        names.add("bands")
    if old.target.title != new.target.title:
        names.add("target_title")
    if old.target.population_status != new.target.population_status:
        names.add("population_status")
    for name in CAMPAIGN_FIELDS[:2] + CAMPAIGN_FIELDS[4:9]:
        if getattr(old, name) != getattr(new, name):
            names.add(name)
    return frozenset(names)


class CampaignStore:
    """Campaigns by row, with an id index; every mutation tells the listeners what changed."""

    def __init__(self) -> None:
        self._rows: list[Campaign] = []
        self._index: dict[int, int] = {}
        self._listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[Campaign]:
        return iter(self._rows)

    def __contains__(self, campaign_id: object) -> bool:
        return campaign_id in self._index

    @property
    def rows(self) -> list[Campaign]:
        """The rows themselves, for fast reads (the same list for the store's lifetime)."""
        return self._rows

    def row(self, row: int) -> Campaign:
        return self._rows[row]

    def row_of(self, campaign_id: int) -> int | None:
        return self._index.get(campaign_id)

    def get(self, campaign_id: int) -> Campaign | None:
        row = self._index.get(campaign_id)
        return None if row is None else self._rows[row]

    # ---- mutations ----------------------------------------------------------------------

    def replace_all(self, campaigns: Iterable[Campaign]) -> None:
        """Make the store hold exactly `campaigns`: updates, inserts and removals, no reset."""
        incoming = {campaign.id: campaign for campaign in campaigns}
        gone = [cid for cid in self._index if cid not in incoming]
        for cid in gone:
            self.remove(cid)
        new = [c for c in incoming.values() if c.id not in self._index]
        for campaign in incoming.values():
            if campaign.id in self._index:
                self._update(campaign)
        self._append(new)

    def upsert(self, campaign: Campaign) -> None:
        """Add or update one fetched campaign, keeping whichever stats are newer.

        A row read before stats that a live event already brought (`as_of_seq` below the
        event's `seq`) still brings its state and target, but the newer stats stay.
        """
        current = self.get(campaign.id)
        if current is None:
            self._append([campaign])
            return
        if current.as_of_seq is not None and campaign.as_of_seq is not None:
            older = campaign.as_of_seq < current.as_of_seq
            campaign = campaign.with_stats(current.stats, current.as_of_seq) if older else campaign
        self._update(campaign)

    def remove(self, campaign_id: int) -> None:
        row = self._index.get(campaign_id)
        if row is None:
            return
        self._emit(RowsRemoved(row, row, done=False))
        del self._index[campaign_id]
        del self._rows[row]
        for later in self._rows[row:]:
            self._index[later.id] -= 1
        self._emit(RowsRemoved(row, row))

    def apply_events(self, frames: Iterable[EventFrame]) -> set[int]:
        """Apply the stats that marketer-topic events carry, one change per row.

        Returns the ids to fetch: a campaign is fetched when it is unknown, when an event
        carries no stats, or when its state or target status may have changed (the stats do
        not carry those). Stats older than the row (`seq` not above its `as_of_seq`) are
        skipped.
        """
        latest: dict[int, EventFrame] = {}
        fetch: set[int] = set()
        for frame in frames:
            if frame.campaign_id not in self._index or frame.stats is None or frame.changes_state:
                fetch.add(frame.campaign_id)
            if frame.stats is not None and frame.campaign_id in self._index:
                newest = latest.get(frame.campaign_id)
                if newest is None or frame.seq > newest.seq:
                    latest[frame.campaign_id] = frame
        for campaign_id, frame in latest.items():
            current = self.get(campaign_id)
            if current is not None and frame.stats is not None and current.is_behind(frame.seq):
                self._update(current.with_stats(frame.stats, frame.seq))
        return fetch

    # ---- internals ----------------------------------------------------------------------

    def _update(self, campaign: Campaign) -> None:
        row = self._index[campaign.id]
        changed = changed_fields(self._rows[row], campaign)
        self._rows[row] = campaign
        if changed:
            self._emit(RowChanged(row, campaign.id, changed))

    def _append(self, campaigns: list[Campaign]) -> None:
        if not campaigns:
            return
        first = len(self._rows)
        self._emit(RowsInserted(first, first + len(campaigns) - 1, done=False))
        for offset, campaign in enumerate(campaigns):
            self._index[campaign.id] = first + offset
        self._rows.extend(campaigns)
        self._emit(RowsInserted(first, len(self._rows) - 1))

    def _emit(self, change: Change) -> None:
        for listener in list(self._listeners):
            listener(change)
