"""Campaign state and stats: the numbers a marketer watches on the grid."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any


class CampaignState(StrEnum):
    NOT_LAUNCHED = "not_launched"
    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"

    @property
    def label(self) -> str:
        return _STATE_LABELS[self]


_STATE_LABELS = {
    CampaignState.NOT_LAUNCHED: "Not launched",
    CampaignState.ACTIVE: "Active",
    CampaignState.PAUSED: "Paused",
    CampaignState.ARCHIVED: "Archived",
}


class PopulationStatus(StrEnum):
    NOT_POPULATED = "not_populated"
    POPULATING = "populating"
    POPULATED = "populated"


def campaign_state(
    launched_at: datetime | None,
    deactivated_at: datetime | None,
    paused_at: datetime | None = None,
) -> CampaignState:
    """A campaign's state is derived from its dates, never stored."""
    if deactivated_at is not None:
        return CampaignState.ARCHIVED
    if paused_at is not None and launched_at is not None:
        return CampaignState.PAUSED
    if launched_at is not None:
        return CampaignState.ACTIVE
    return CampaignState.NOT_LAUNCHED


@dataclass(frozen=True, slots=True)
class BandCount:
    """How many members of a target fall in one band (level 0 is the bullseye)."""

    band_id: int
    level: int
    name: str
    population: int


@dataclass(frozen=True, slots=True)
class CampaignStats:
    """The stats of one campaign. Money is in the marketer's currency, two decimals."""

    target_population: int = 0
    pending_offers: int = 0
    current_offers: int = 0
    completed_offers: int = 0
    pending_spend: float = 0.0
    spend_to_date: float = 0.0
    balance: float = 0.0
    unique_reach: int = 0
    banner_views: int = 0
    text_jumps: int = 0
    bands: tuple[BandCount, ...] = field(default=())

    def to_wire(self) -> dict[str, Any]:
        # Every field is a number, a string or a band of those: no deep copy needed
        # (dataclasses.asdict costs ten times as much, which shows on a grid of 10,000).
        data: dict[str, Any] = {name: getattr(self, name) for name in _STAT_NAMES}
        data["bands"] = [
            {"band_id": b.band_id, "level": b.level, "name": b.name, "population": b.population}
            for b in self.bands
        ]
        return data

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> CampaignStats:
        values = {key: value for key, value in data.items() if key in _KNOWN_STATS}
        bands = tuple(BandCount(**band) for band in data.get("bands") or ())
        return cls(**values, bands=bands)


_STAT_NAMES = tuple(f.name for f in fields(CampaignStats) if f.name != "bands")
_KNOWN_STATS = frozenset(_STAT_NAMES)  # built once: from_wire runs per campaign of a grid


def cents_to_amount(cents: int | None) -> float:
    """Money is stored as whole cents; the wire carries amounts with two decimals."""
    return round((cents or 0) / 100, 2)
