"""A marketer's campaigns: reading them with their stats, and every change a marketer makes.

Each change is one transaction with its audit entry and its `campaign_updated` event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import String, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from pulse_core import messages
from pulse_core.names import AuditAction, UpdateReason
from pulse_core.stats import CampaignState, CampaignStats, PopulationStatus, campaign_state
from pulse_core.topics import marketer_topic
from pulse_data import audit, eventlog
from pulse_data.audit import Actor
from pulse_data.database import Database
from pulse_data.models import (
    Band,
    Bid,
    Campaign,
    LedgerEntry,
    LedgerKind,
    Marketer,
    Target,
    utcnow,
)
from pulse_data.population import band_name, ensure_bands
from pulse_data.pubsub import CampaignEvents, EventPublisher, campaign_transaction
from pulse_data.sqlutil import rowcount, table
from pulse_data.stats import campaign_stats, campaign_stats_wire
from pulse_data.targets import InvalidField, TargetNotFound


class CampaignNotFound(LookupError):
    """No such campaign for this marketer (another marketer's campaign is not found either)."""


class CampaignStateConflict(Exception):
    """The action does not fit the campaign's state; the message says why."""


@dataclass(frozen=True, slots=True)
class BidView:
    """What a campaign pays in one band of its target, in cents."""

    band_id: int
    level: int
    offer_amount_cents: int
    marketer_cost_cents: int


@dataclass(frozen=True, slots=True)
class CampaignView:
    campaign: Campaign
    target: Target
    state: CampaignState
    stats: CampaignStats
    as_of_seq: int  # the marketer topic's seq this view reflects: events up to it are in it
    bids: tuple[BidView, ...] | None = None  # read for one campaign only


@dataclass(frozen=True, slots=True)
class BidInput:
    band_id: int
    offer_amount_cents: int
    marketer_cost_cents: int


@dataclass(frozen=True, slots=True)
class CampaignDraft:
    title: str
    description: str
    target_id: int
    starts_at: datetime
    ends_at: datetime
    bids: tuple[BidInput, ...]


@dataclass(frozen=True, slots=True)
class CampaignChanges:
    """An edit: None leaves that field as it is."""

    title: str | None = None
    description: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    bids: tuple[BidInput, ...] | None = None


@dataclass(frozen=True, slots=True)
class Deposit:
    id: int
    campaign_id: int
    amount_cents: int
    note: str
    created_at: datetime
    balance_cents: int  # the campaign's balance after it


class LaunchOutcome(Enum):
    POPULATE_TARGET = "populate_target"
    TARGET_POPULATING = "target_populating"
    TARGET_POPULATED = "target_populated"


@dataclass(frozen=True, slots=True)
class Launched:
    campaign_id: int
    target_id: int
    outcome: LaunchOutcome

    @property
    def message(self) -> str:
        if self.outcome is LaunchOutcome.TARGET_POPULATED:
            return messages.LAUNCHED_BUILDING
        return messages.LAUNCHED_POPULATING


# ---- reading ---------------------------------------------------------------------------


async def list_campaigns(
    session: AsyncSession, marketer_id: int, campaign_id: int | None = None
) -> list[CampaignView]:
    """The marketer's campaigns (or one of them, with its bids) with their stats, by id.

    Call it in a read session (one snapshot): `as_of_seq` then tells which of the marketer
    topic's events the views already reflect.
    """
    as_of_seq = await eventlog.head(session, marketer_topic(marketer_id))
    query = select(Campaign).where(Campaign.marketer_id == marketer_id).order_by(Campaign.id)
    if campaign_id is not None:
        query = query.where(Campaign.id == campaign_id)
    campaigns: Sequence[Campaign] = (await session.scalars(query)).all()
    if not campaigns:
        return []
    bids = None
    if campaign_id is not None:
        stats = await campaign_stats(session, campaign_ids=[campaign_id])
        bids = await _bids(session, campaign_id)
    else:
        stats = await campaign_stats(session, marketer_id=marketer_id)
    return [
        CampaignView(
            campaign=campaign,
            target=campaign.target,
            state=_state(campaign),
            stats=stats.get(campaign.id, CampaignStats()),
            as_of_seq=as_of_seq,
            bids=bids,
        )
        for campaign in campaigns
    ]


@dataclass(frozen=True, slots=True)
class CampaignListing:
    """Every campaign of a marketer as plain rows, by id: no ORM object per campaign."""

    as_of_seq: int  # as in `CampaignView`
    rows: Sequence[Sequence[Any]]  # the columns of `LISTING_COLUMNS`, in that order
    stats: dict[int, dict[str, Any]]  # `CampaignStats.to_wire()` by campaign id


class UtcText(FunctionElement[str]):
    """A time column as the JSON text pydantic writes for its UTC datetime, made by the
    database: `2026-12-03T09:12:00.250000Z`, or `2026-12-03T09:12:00Z` on a whole second.

    10,000 campaigns have 60,000 times: made into datetimes and back into text in Python
    they were a third of a list's answer.
    """

    type = String()
    inherit_cache = True


@compiles(UtcText)
def _utc_text(element: UtcText, compiler: Any, **kw: Any) -> str:
    # Another dialect (or str() of a statement): the column itself.
    return str(compiler.process(element.clauses, **kw))


@compiles(UtcText, "sqlite")
def _utc_text_sqlite(element: UtcText, compiler: Any, **kw: Any) -> str:
    # SQLite keeps them as text in UTC, `YYYY-MM-DD HH:MM:SS.ffffff` (SQLAlchemy's format), or
    # without the fraction. One `replace` is cheaper than taking the text apart.
    value = compiler.process(element.clauses, **kw)
    return f"replace(replace({value}, ' ', 'T'), '.000000', '') || 'Z'"


@compiles(UtcText, "postgresql")
def _utc_text_postgresql(element: UtcText, compiler: Any, **kw: Any) -> str:
    # One `to_char` (most of the cost) and the fraction dropped on a whole second.
    value = compiler.process(element.clauses, **kw)
    return (
        f"replace(to_char(({value} AT TIME ZONE 'UTC'), 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), "
        "'.000000', '') || 'Z'"
    )


_CAMPAIGNS = table(Campaign).c
_TARGETS = table(Target).c
# Core columns, the times as their JSON text: no ORM object and no datetime per campaign.
LISTING_COLUMNS = (
    _CAMPAIGNS.id,
    _CAMPAIGNS.marketer_id,
    _CAMPAIGNS.title,
    _CAMPAIGNS.description,
    UtcText(_CAMPAIGNS.starts_at).label("starts_at"),
    UtcText(_CAMPAIGNS.ends_at).label("ends_at"),
    UtcText(_CAMPAIGNS.launched_at).label("launched_at"),
    UtcText(_CAMPAIGNS.deactivated_at).label("deactivated_at"),
    UtcText(_CAMPAIGNS.paused_at).label("paused_at"),
    _TARGETS.id.label("target_id"),
    _TARGETS.title.label("target_title"),
    _TARGETS.population_status,
    UtcText(_TARGETS.last_populated_at).label("last_populated_at"),
)
_TARGET_ID = [column.name for column in LISTING_COLUMNS].index("target_id")


async def campaign_listing(session: AsyncSession, marketer_id: int) -> CampaignListing:
    """What `list_campaigns` reads for all of a marketer's campaigns, for large lists.

    Call it in a read session, as `list_campaigns`.
    """
    as_of_seq = await eventlog.head(session, marketer_topic(marketer_id))
    rows = (
        await session.execute(
            select(*LISTING_COLUMNS)
            .join(table(Target), _TARGETS.id == _CAMPAIGNS.target_id)
            .where(_CAMPAIGNS.marketer_id == marketer_id)
            .order_by(_CAMPAIGNS.id)
        )
    ).all()
    target_of = {row[0]: row[_TARGET_ID] for row in rows}  # by index: quicker than by name
    stats = await campaign_stats_wire(session, marketer_id, target_of) if rows else {}
    return CampaignListing(as_of_seq, rows, stats)


async def get_campaign(session: AsyncSession, marketer_id: int, campaign_id: int) -> CampaignView:
    views = await list_campaigns(session, marketer_id, campaign_id)
    if not views:
        raise CampaignNotFound(campaign_id)
    return views[0]


async def _bids(session: AsyncSession, campaign_id: int) -> tuple[BidView, ...]:
    rows = await session.execute(
        select(Bid.band_id, Band.level, Bid.offer_amount_cents, Bid.marketer_cost_cents)
        .join(Band, Band.id == Bid.band_id)
        .where(Bid.campaign_id == campaign_id)
        .order_by(Band.level)
    )
    return tuple(BidView(*row) for row in rows)


async def marketer_name(session: AsyncSession, marketer_id: int) -> str:
    return (await session.scalar(select(Marketer.name).where(Marketer.id == marketer_id))) or ""


async def campaign_marketer(session: AsyncSession, campaign_id: int) -> int | None:
    """The id of the marketer that owns a campaign, or None when there is no such campaign."""
    return await session.scalar(select(Campaign.marketer_id).where(Campaign.id == campaign_id))


def _state(campaign: Campaign) -> CampaignState:
    return campaign_state(campaign.launched_at, campaign.deactivated_at, campaign.paused_at)


# ---- checks ----------------------------------------------------------------------------


async def _locked_campaign(session: AsyncSession, marketer_id: int, campaign_id: int) -> Campaign:
    """The marketer's campaign, locked until commit, unless it is missing (or another's)."""
    campaign = await session.scalar(
        select(Campaign)
        .where(Campaign.id == campaign_id, Campaign.marketer_id == marketer_id)
        .with_for_update(of=Campaign)
        .execution_options(populate_existing=True)
    )
    if campaign is None:
        raise CampaignNotFound(campaign_id)
    return campaign


async def _changeable(session: AsyncSession, marketer_id: int, campaign_id: int) -> Campaign:
    """The marketer's campaign, locked, unless it is missing (or another's) or archived."""
    campaign = await _locked_campaign(session, marketer_id, campaign_id)
    if campaign.deactivated_at is not None:
        raise CampaignStateConflict(messages.ARCHIVED)
    return campaign


def _check_dates(starts_at: datetime | None, ends_at: datetime | None) -> None:
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise InvalidField(("ends_at",), "must be after starts_at")


async def _check_bids(session: AsyncSession, target_id: int, bids: Sequence[BidInput]) -> None:
    """One bid per band of the target, in cents > 0, neither amount rising outward."""
    level_of = {
        band_id: level for level, band_id in (await ensure_bands(session, target_id)).items()
    }
    by_level: dict[int, tuple[int, BidInput]] = {}
    for n, bid in enumerate(bids):
        level = level_of.get(bid.band_id)
        if level is None:
            raise InvalidField(
                ("bids", n, "band_id"), f"band {bid.band_id} is not a band of target {target_id}"
            )
        if level in by_level:
            raise InvalidField(("bids", n, "band_id"), f"band {bid.band_id} has a bid already")
        for name in ("offer_amount_cents", "marketer_cost_cents"):
            if getattr(bid, name) < 1:
                raise InvalidField(("bids", n, name), "must be a whole number of cents above 0")
        by_level[level] = (n, bid)
    for level in sorted(level_of.values()):
        if level not in by_level:
            raise InvalidField(("bids",), f"no bid for band {band_name(level)} of the target")
        if level == 0:
            continue
        n, bid = by_level[level]
        _, inner = by_level[level - 1]
        for name in ("offer_amount_cents", "marketer_cost_cents"):
            if getattr(bid, name) > getattr(inner, name):
                raise InvalidField(
                    ("bids", n, name),
                    f"{band_name(level)} bids {getattr(bid, name)}, more than "
                    f"{band_name(level - 1)}'s {getattr(inner, name)}: bids may not rise "
                    "from the bullseye outward",
                )


async def _replace_bids(session: AsyncSession, campaign_id: int, bids: Sequence[BidInput]) -> None:
    await session.execute(delete(Bid).where(Bid.campaign_id == campaign_id))
    await session.execute(
        insert(Bid),
        [
            {
                "campaign_id": campaign_id,
                "band_id": bid.band_id,
                "offer_amount_cents": bid.offer_amount_cents,
                "marketer_cost_cents": bid.marketer_cost_cents,
            }
            for bid in bids
        ],
    )


def _bids_detail(bids: Sequence[BidInput]) -> list[dict[str, int]]:
    return [
        {
            "band_id": bid.band_id,
            "offer_amount_cents": bid.offer_amount_cents,
            "marketer_cost_cents": bid.marketer_cost_cents,
        }
        for bid in bids
    ]


async def _done(
    events: CampaignEvents,
    campaign: Campaign,
    actor: Actor,
    action: AuditAction,
    reason: UpdateReason,
    detail: dict[str, Any] | None = None,
) -> None:
    """Audit the change and announce it, in the change's transaction."""
    await audit.record(
        events.session,
        marketer_id=campaign.marketer_id,
        actor=actor,
        action=action,
        campaign_id=campaign.id,
        detail=detail,
    )
    events.broadcast_campaign_updated(campaign.id, reason=reason, **actor.event_fields())


# ---- changes ---------------------------------------------------------------------------


async def create_campaign(
    db: Database,
    publisher: EventPublisher | None,
    marketer_id: int,
    actor: Actor,
    draft: CampaignDraft,
) -> int:
    """Create a `not_launched` campaign with its bids; returns its id."""
    _check_dates(draft.starts_at, draft.ends_at)
    async with campaign_transaction(db, publisher) as events:
        session = events.session
        owned = await session.scalar(
            select(Target.id).where(Target.id == draft.target_id, Target.marketer_id == marketer_id)
        )
        if owned is None:
            raise TargetNotFound(draft.target_id)
        await _check_bids(session, draft.target_id, draft.bids)
        campaign = Campaign(
            marketer_id=marketer_id,
            target_id=draft.target_id,
            title=draft.title,
            description=draft.description,
            starts_at=draft.starts_at,
            ends_at=draft.ends_at,
            created_at=utcnow(),
        )
        session.add(campaign)
        await session.flush()
        await _replace_bids(session, campaign.id, draft.bids)
        detail = {"title": draft.title, "target_id": draft.target_id}
        await _done(
            events, campaign, actor, AuditAction.CAMPAIGN_CREATED, UpdateReason.CREATED, detail
        )
        return int(campaign.id)


async def edit_campaign(
    db: Database,
    publisher: EventPublisher | None,
    marketer_id: int,
    actor: Actor,
    campaign_id: int,
    changes: CampaignChanges,
) -> None:
    """Change a campaign's title, description, dates, or (before launch) bids."""
    async with campaign_transaction(db, publisher) as events:
        session = events.session
        campaign = await _changeable(session, marketer_id, campaign_id)
        _check_dates(changes.starts_at or campaign.starts_at, changes.ends_at or campaign.ends_at)
        detail: dict[str, Any] = {}
        if changes.bids is not None:
            if campaign.launched_at is not None:
                raise CampaignStateConflict(messages.BIDS_FIXED)
            await _check_bids(session, campaign.target_id, changes.bids)
            await _replace_bids(session, campaign_id, changes.bids)
            detail["bids"] = _bids_detail(changes.bids)
        values = {
            name: getattr(changes, name)
            for name in ("title", "description", "starts_at", "ends_at")
            if getattr(changes, name) is not None
        }
        if values:
            await session.execute(update(Campaign).where(Campaign.id == campaign_id).values(values))
            detail.update(values)
        await _done(
            events, campaign, actor, AuditAction.CAMPAIGN_EDITED, UpdateReason.EDITED, detail
        )


_CHANGES: dict[AuditAction, tuple[frozenset[CampaignState], UpdateReason]] = {
    AuditAction.PAUSED: (frozenset({CampaignState.ACTIVE}), UpdateReason.PAUSED),
    AuditAction.RESUMED: (frozenset({CampaignState.PAUSED}), UpdateReason.RESUMED),
    AuditAction.ARCHIVED: (
        frozenset({CampaignState.ACTIVE, CampaignState.PAUSED}),
        UpdateReason.ARCHIVED,
    ),
}


def _conflict(action: AuditAction, state: CampaignState) -> str:
    """Why `action` does not fit a campaign in `state`."""
    if state is CampaignState.ARCHIVED:
        return messages.ARCHIVED
    if action is AuditAction.ARCHIVED:
        return messages.ONLY_LAUNCHED_ARCHIVED
    if action is AuditAction.RESUMED:
        return messages.NOT_PAUSED
    if state is CampaignState.PAUSED:
        return messages.ALREADY_PAUSED
    return messages.MUST_LAUNCH_FIRST


async def change_state(
    db: Database,
    publisher: EventPublisher | None,
    marketer_id: int,
    actor: Actor,
    campaign_id: int,
    action: AuditAction,
) -> None:
    """Pause (active → paused), resume (paused → active) or archive (active or paused)."""
    allowed_from, reason = _CHANGES[action]
    async with campaign_transaction(db, publisher) as events:
        session = events.session
        campaign = await _locked_campaign(session, marketer_id, campaign_id)
        state = _state(campaign)
        if state not in allowed_from:
            raise CampaignStateConflict(_conflict(action, state))
        now = utcnow()
        values: dict[str, datetime | None] = (
            {"deactivated_at": now, "paused_at": None}
            if action is AuditAction.ARCHIVED
            else {"paused_at": now if action is AuditAction.PAUSED else None}
        )
        await session.execute(update(Campaign).where(Campaign.id == campaign_id).values(values))
        await _done(events, campaign, actor, action, reason, {"from": state.value})


async def deposit(
    db: Database,
    publisher: EventPublisher | None,
    marketer_id: int,
    actor: Actor,
    campaign_id: int,
    amount_cents: int,
    note: str,
) -> Deposit:
    """Add money to a campaign's balance (not to an archived one)."""
    if amount_cents < 1:
        raise InvalidField(("amount_cents",), "must be a whole number of cents above 0")
    async with campaign_transaction(db, publisher) as events:
        session = events.session
        campaign = await _changeable(session, marketer_id, campaign_id)
        created_at = utcnow()
        entry_id = (
            await session.execute(
                insert(LedgerEntry)
                .values(
                    campaign_id=campaign_id,
                    kind=LedgerKind.DEPOSIT,
                    amount_cents=amount_cents,
                    description=note,
                    created_at=created_at,
                )
                .returning(LedgerEntry.id)
            )
        ).scalar_one()
        balance = await session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0)).where(
                LedgerEntry.campaign_id == campaign_id
            )
        )
        detail = {"amount_cents": amount_cents, "note": note, "ledger_entry_id": entry_id}
        await _done(events, campaign, actor, AuditAction.DEPOSIT, UpdateReason.DEPOSIT, detail)
    return Deposit(int(entry_id), campaign_id, amount_cents, note, created_at, int(balance or 0))


async def launch_campaign(
    db: Database,
    publisher: EventPublisher | None,
    marketer_id: int,
    campaign_id: int,
    *,
    actor: Actor,
) -> Launched:
    """Mark the campaign launched and its target populating; the caller enqueues the jobs."""
    async with campaign_transaction(db, publisher) as events:
        session = events.session
        campaign = await _changeable(session, marketer_id, campaign_id)
        if campaign.paused_at is not None:
            raise CampaignStateConflict(messages.PAUSED)
        launched = await session.execute(
            update(Campaign)
            .where(
                Campaign.id == campaign_id,
                Campaign.launched_at.is_(None),
                Campaign.deactivated_at.is_(None),
            )
            .values(launched_at=utcnow())
        )
        if rowcount(launched) != 1:
            raise CampaignStateConflict(messages.ALREADY_LAUNCHED)
        marked = await session.execute(
            update(Target)
            .where(
                Target.id == campaign.target_id,
                Target.population_status == PopulationStatus.NOT_POPULATED.value,
            )
            .values(population_status=PopulationStatus.POPULATING.value)
        )
        if rowcount(marked) == 1:
            outcome = LaunchOutcome.POPULATE_TARGET
        else:
            status = await session.scalar(
                select(Target.population_status).where(Target.id == campaign.target_id)
            )
            outcome = (
                LaunchOutcome.TARGET_POPULATED
                if status == PopulationStatus.POPULATED.value
                else LaunchOutcome.TARGET_POPULATING
            )
        detail = {"outcome": outcome.value}
        await _done(events, campaign, actor, AuditAction.LAUNCH, UpdateReason.LAUNCHED, detail)
        return Launched(campaign_id, campaign.target_id, outcome)


async def request_refresh(
    db: Database, marketer_id: int, actor: Actor, campaign_id: int, request_id: str
) -> Campaign:
    """Check that offers may be refreshed now and audit the request; returns the campaign."""
    async with db.writer() as session:
        campaign = await _changeable(session, marketer_id, campaign_id)
        if campaign.launched_at is None:
            raise CampaignStateConflict(messages.MUST_LAUNCH_FIRST)
        if campaign.paused_at is not None:
            raise CampaignStateConflict(messages.PAUSED)
        await audit.record(
            session,
            marketer_id=marketer_id,
            actor=actor,
            action=AuditAction.REFRESH_OFFERS,
            campaign_id=campaign_id,
            detail={"request_id": request_id},
        )
        await session.commit()
        return campaign
