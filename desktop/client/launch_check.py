"""What a launch puts at stake, worked out as the server will: one offer per member of the
target, at the marketer cost of the member's band. Qt-free; the launch dialog shows it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from desktop.client.campaign_forms import BidInfo, cents_of, money
from desktop.client.models import Campaign
from pulse_core.stats import PopulationStatus


@dataclass(frozen=True, slots=True)
class LaunchPreview:
    """The facts of the launch confirmation, as label → text rows."""

    title: str
    target: str
    audience: str
    spend: str
    pending: str
    balance: str
    warning: str = ""  # the spend at stake is more than the balance
    audience_count: int | None = None  # None until the target is populated
    spend_cents: int | None = None  # None while it cannot be known

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("Target", self.target),
            ("Audience", self.audience),
            ("Spend at stake", self.spend),
            ("Pending spend now", self.pending),
            ("Balance", self.balance),
        ]


def launch_preview(campaign: Campaign, bids: Sequence[BidInfo] | None) -> LaunchPreview:
    """The preview of launching `campaign`; `bids` None: they could not be read (yet)."""
    stats = campaign.stats
    status = campaign.target.population_status
    populated = status is PopulationStatus.POPULATED
    balance_cents = cents_of(stats.balance)
    cost_of = {bid.band_id: bid.marketer_cost_cents for bid in bids or ()}
    if populated:
        bands = " · ".join(f"{band.name} {band.population:,}" for band in stats.bands)
        audience = f"{stats.target_population:,} members" + (f" ({bands})" if bands else "")
        audience_count: int | None = stats.target_population
    elif status is PopulationStatus.POPULATING:
        audience = "Being counted now: the target is populating"
        audience_count = None
    else:
        audience = "Not counted yet: the target is populated when the campaign launches"
        audience_count = None

    spend_cents: int | None = None
    if bids is None:
        spend = "Unknown: the campaign's bids could not be read"
    elif populated:
        spend_cents = sum(band.population * cost_of.get(band.band_id, 0) for band in stats.bands)
        parts = ", ".join(
            f"{band.name} {band.population:,} × {money(cost_of.get(band.band_id, 0))}"
            for band in stats.bands
            if band.population
        )
        spend = f"{money(spend_cents)}: one offer per member" + (f" ({parts})" if parts else "")
    elif cost_of:
        spend = (
            f"Known once the audience is counted: up to {money(max(cost_of.values()))} "
            "per member reached"
        )
    else:
        spend = "Known once the audience is counted"

    warning = ""
    if spend_cents is not None and spend_cents > balance_cents:
        warning = (
            f"The spend at stake is more than the balance ({money(balance_cents)}): "
            "add a deposit before the offers go live."
        )
    target = campaign.target.title + ("" if populated else f" ({_status_word(status)})")
    return LaunchPreview(
        title=campaign.title,
        target=target,
        audience=audience,
        spend=spend,
        pending=money(cents_of(stats.pending_spend)),
        balance=money(balance_cents),
        warning=warning,
        audience_count=audience_count,
        spend_cents=spend_cents,
    )


def _status_word(status: PopulationStatus) -> str:
    return "populating" if status is PopulationStatus.POPULATING else "not populated yet"
