"""'What changed?': one readable line per stored event of a campaign, and chart points."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from desktop.client.campaign_forms import cents_of, money
from desktop.client.models import EventFrame
from pulse_core.names import EventName
from pulse_core.stats import CampaignStats

STAT_LABELS = {
    "target_population": "Target population",
    "pending_offers": "Pending offers",
    "current_offers": "Current offers",
    "completed_offers": "Completed offers",
    "pending_spend": "Pending spend",
    "spend_to_date": "Spend to date",
    "balance": "Balance",
    "unique_reach": "Unique reach",
    "banner_views": "Banner views",
    "text_jumps": "Text jumps",
}
MONEY = frozenset({"pending_spend", "spend_to_date", "balance"})

REASON_LABELS = {
    "launched": "Campaign launched",
    "target_status": "Target status changed",
    "offers_refreshed": "Offer refresh finished",
    "offers_activated": "Pending offers went live",
    "ad_activity": "Ad activity",
    "created": "Campaign created",
    "edited": "Campaign edited",
    "paused": "Campaign paused",
    "resumed": "Campaign resumed",
    "archived": "Campaign archived",
    "deposit": "Deposit received",
}
# What a person did, for "Launched by Bob Baker".
DONE_BY = {
    "launched": "Launched",
    "created": "Created",
    "edited": "Edited",
    "paused": "Paused",
    "resumed": "Resumed",
    "archived": "Archived",
    "deposit": "Deposit",
}


def parse_ts(ts: str) -> datetime:
    """The frame's ISO 8601 UTC time, or now when it is missing or malformed."""
    try:
        moment = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def format_value(name: str, value: float) -> str:
    return f"{value:,.2f}" if name in MONEY else f"{int(value):,}"


def stat_changes(before: CampaignStats | None, after: CampaignStats | None) -> list[str]:
    """`Pending offers 0 → 50` for every stat that moved."""
    if before is None or after is None:
        return []
    changes = []
    for name, label in STAT_LABELS.items():
        old, new = getattr(before, name), getattr(after, name)
        if old != new:
            changes.append(f"{label} {format_value(name, old)} → {format_value(name, new)}")
    return changes


def describe(frame: EventFrame, before: CampaignStats | None) -> str:
    """A one-line headline for the event, then what moved."""
    if frame.event == EventName.TARGET_POPULATED:
        headline = "Target populated"
    elif frame.event == EventName.OFFERS_CREATED:
        headline = f"{frame.count or 0:,} offers created" + _asked_by(frame)
    elif frame.reason == "offers_refreshed":
        headline = f"Offer refresh finished: {frame.created or 0:,} new" + _asked_by(frame)
    elif frame.actor and frame.reason in DONE_BY:
        headline = f"{DONE_BY[frame.reason]}{_deposited(frame, before)} by {frame.actor}"
    else:
        headline = REASON_LABELS.get(frame.reason or "", "Campaign updated")
    changes = stat_changes(before, frame.stats)
    return headline + (": " + ", ".join(changes) if changes else "")


def _asked_by(frame: EventFrame) -> str:
    return f" (asked by {frame.actor})" if frame.actor else ""


def _deposited(frame: EventFrame, before: CampaignStats | None) -> str:
    """` of $500.00` for a deposit whose amount shows in the balance, else nothing."""
    if frame.reason != "deposit" or before is None or frame.stats is None:
        return ""
    amount = cents_of(frame.stats.balance) - cents_of(before.balance)
    return f" of {money(amount)}" if amount > 0 else ""


@dataclass(frozen=True, slots=True)
class ChartPoint:
    at: datetime
    pending_offers: int
    current_offers: int
    spend_to_date: float

    @classmethod
    def of(cls, at: datetime, stats: CampaignStats) -> ChartPoint:
        return cls(at, stats.pending_offers, stats.current_offers, stats.spend_to_date)
