"""Ad events from a sender (an ad server with its key, or the demo traffic): all or nothing,
each sender id stored once, completions charged, one `campaign_updated` per touched campaign.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pulse_core.names import UpdateReason
from pulse_core.stats import CampaignState, campaign_state
from pulse_data.audit import Actor
from pulse_data.database import Database
from pulse_data.models import (
    AdEvent,
    AdEventKind,
    Campaign,
    LedgerEntry,
    LedgerKind,
    Member,
    Offer,
    OfferState,
    utcnow,
)
from pulse_data.pubsub import EventPublisher, campaign_transaction
from pulse_data.sqlutil import insert_ignoring_conflicts, table

MAX_EVENTS = 1000
MAX_ID_LENGTH = 100
MAX_OFFER_ID = 2**63 - 1
MAX_TIME_LENGTH = 64
FUTURE_TOLERANCE = timedelta(minutes=5)
KINDS = (AdEventKind.BANNER_VIEW, AdEventKind.TEXT_JUMP, AdEventKind.COMPLETION)
COMPLETION_DESCRIPTION = "Offer completed"
_TIME_EXAMPLE = "2026-12-01T10:00:00Z"


@dataclass(frozen=True, slots=True)
class Problem:
    """Why the item at `index` of a request is refused."""

    index: int
    reason: str

    def to_wire(self) -> dict[str, Any]:
        return {"index": self.index, "reason": self.reason}


class IngestRejected(Exception):
    """At least one item is bad: nothing of the request was kept."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = sorted(problems, key=lambda problem: problem.index)
        super().__init__(f"{len(self.problems)} bad ad events, first: {self.problems[0].reason}")


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    banner_views: int = 0
    text_jumps: int = 0
    completions: int = 0
    campaign_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class _Event:
    index: int
    id: str
    offer_id: int
    kind: str
    at: datetime


@dataclass(frozen=True, slots=True)
class _Offer:
    campaign_id: int
    member_id: int
    state: str
    cost_cents: int


def _parse_time(value: object, now: datetime) -> datetime | str:
    """The time, or why it is bad."""
    if isinstance(value, str) and len(value) <= MAX_TIME_LENGTH:
        with suppress(ValueError):
            value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        return f"at must be an ISO 8601 time, such as {_TIME_EXAMPLE}"
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=UTC)  # as everywhere in the API: no offset means UTC
    try:
        at = value.astimezone(UTC)
    except OverflowError:
        return f"at must be an ISO 8601 time, such as {_TIME_EXAMPLE}"
    if at > now + FUTURE_TOLERANCE:
        minutes = int(FUTURE_TOLERANCE.total_seconds() // 60)
        return f"at is more than {minutes} minutes in the future: check the sender's clock"
    return at


def _parse(index: int, item: object, now: datetime) -> _Event | list[str]:
    """One item of a request, or the reasons it is bad."""
    if not isinstance(item, Mapping):
        return ["an event is an object with id, offer_id, kind and at"]
    reasons = []
    event_id = item.get("id")
    if not isinstance(event_id, str):
        reasons.append("id is missing" if event_id is None else "id must be a string")
    elif not event_id.strip():
        reasons.append("id is empty")
    elif len(event_id) > MAX_ID_LENGTH:
        reasons.append(f"id is longer than {MAX_ID_LENGTH} characters")
    elif not event_id.isprintable():
        reasons.append("id may not hold control characters")
    offer_id = item.get("offer_id")
    if offer_id is None:
        reasons.append("offer_id is missing")
    elif isinstance(offer_id, bool) or not isinstance(offer_id, int):
        reasons.append("offer_id must be a whole number")
    elif not 0 < offer_id <= MAX_OFFER_ID:
        reasons.append("offer_id is not the id of an offer")
    kind = item.get("kind")
    if kind not in KINDS:
        reasons.append(f"kind must be one of {', '.join(KINDS)}")
    at = _parse_time(item.get("at"), now) if "at" in item else "at is missing"
    if isinstance(at, str):
        reasons.append(at)
    if reasons:
        return reasons
    assert isinstance(event_id, str) and isinstance(offer_id, int) and isinstance(at, datetime)
    return _Event(index, event_id, offer_id, str(kind), at)


def parse_events(items: Sequence[object], now: datetime) -> tuple[list[_Event], list[Problem]]:
    """Check the shape of every item (no database): the good events and the problems."""
    events: list[_Event] = []
    problems: list[Problem] = []
    for index, item in enumerate(items):
        parsed = _parse(index, item, now)
        if isinstance(parsed, _Event):
            events.append(parsed)
        else:
            problems.append(Problem(index, "; ".join(parsed)))
    return events, problems


async def _stored_ids(session: AsyncSession, marketer_id: int, ids: Sequence[str]) -> set[str]:
    if not ids:
        return set()
    rows = await session.scalars(
        select(AdEvent.external_id).where(
            AdEvent.marketer_id == marketer_id, AdEvent.external_id.in_(ids)
        )
    )
    return {row for row in rows if row is not None}


async def _offers(
    session: AsyncSession, marketer_id: int, offer_ids: set[int]
) -> tuple[dict[int, _Offer], dict[int, CampaignState]]:
    """The marketer's offers among `offer_ids`, and the states of their campaigns.

    The campaigns are read with a share lock (PostgreSQL), so a pause or an archive waits for
    this request to commit instead of slipping in between the check and the commit.
    """
    if not offer_ids:
        return {}, {}
    rows = await session.execute(
        select(Offer.id, Offer.campaign_id, Offer.member_id, Offer.state, Offer.marketer_cost_cents)
        .join(Campaign, Campaign.id == Offer.campaign_id)
        .where(Offer.id.in_(offer_ids), Campaign.marketer_id == marketer_id)
    )
    offers = {row.id: _Offer(row.campaign_id, row.member_id, row.state, row[4]) for row in rows}
    campaign_ids = sorted({offer.campaign_id for offer in offers.values()})
    if not campaign_ids:
        return offers, {}
    campaigns = await session.execute(
        select(Campaign.id, Campaign.launched_at, Campaign.deactivated_at, Campaign.paused_at)
        .where(Campaign.id.in_(campaign_ids))
        .order_by(Campaign.id)
        .with_for_update(read=True)
    )
    states = {row.id: campaign_state(*row[1:]) for row in campaigns}
    return offers, states


def _check(
    events: Sequence[_Event], offers: Mapping[int, _Offer], states: Mapping[int, CampaignState]
) -> list[Problem]:
    problems = []
    completed_by: dict[int, int] = {}
    for event in events:
        offer = offers.get(event.offer_id)
        if offer is None:
            problems.append(Problem(event.index, f"unknown offer {event.offer_id}"))
            continue
        state = states[offer.campaign_id]
        if state is not CampaignState.ACTIVE:
            reason = f"campaign {offer.campaign_id} is {state.label.lower()}: it takes no ad events"
        elif offer.state != OfferState.CURRENT:
            reason = f"offer {event.offer_id} is {offer.state}, not current"
        elif event.kind == AdEventKind.COMPLETION and event.offer_id in completed_by:
            earlier = completed_by[event.offer_id]
            reason = f"offer {event.offer_id} is completed by event {earlier} of this request"
        else:
            if event.kind == AdEventKind.COMPLETION:
                completed_by[event.offer_id] = event.index
            continue
        problems.append(Problem(event.index, reason))
    return problems


async def ingest(
    db: Database,
    publisher: EventPublisher | None,
    marketer_id: int,
    actor: Actor,
    events: Sequence[object],
    *,
    now: datetime | None = None,
) -> IngestResult:
    """Store a sender's ad events for one marketer, all or nothing.

    Every item is checked before anything is written; any bad item raises `IngestRejected`
    naming each one. An `id` the marketer already sent (or sent earlier in this request) is
    a duplicate that changes nothing, so a retried request is safe, even while the first
    attempt is still running: the insert skips ids stored meanwhile and counts the rest.
    """
    now = now or utcnow()
    parsed, problems = parse_events(events, now)
    first: dict[str, _Event] = {}
    for event in parsed:
        first.setdefault(event.id, event)
    async with campaign_transaction(db, publisher) as transaction:
        session = transaction.session
        offers, states = await _offers(session, marketer_id, {e.offer_id for e in first.values()})
        refused = _check(list(first.values()), offers, states)
        stored: set[str] = set()
        if refused:
            # An event stored before is a duplicate, whatever became of its offer since (a
            # retry of a request that completed offers); other duplicates show at the insert.
            id_at = {event.index: event.id for event in first.values()}
            stored = await _stored_ids(session, marketer_id, [id_at[p.index] for p in refused])
            problems += [problem for problem in refused if id_at[problem.index] not in stored]
        if problems:
            raise IngestRejected(problems)
        new = [event for event in first.values() if event.id not in stored]
        inserted = await _insert(session, marketer_id, new, offers)
        completing = {e.offer_id: e for e in inserted if e.kind == AdEventKind.COMPLETION}
        await _complete(session, completing, offers, now)
        touched = sorted({offers[event.offer_id].campaign_id for event in inserted})
        for campaign_id in touched:
            transaction.broadcast_campaign_updated(
                campaign_id, reason=UpdateReason.AD_ACTIVITY, **actor.event_fields()
            )
    kinds = Counter(event.kind for event in inserted)
    return IngestResult(
        accepted=len(inserted),
        duplicates=len(events) - len(inserted),
        banner_views=kinds[AdEventKind.BANNER_VIEW],
        text_jumps=kinds[AdEventKind.TEXT_JUMP],
        completions=kinds[AdEventKind.COMPLETION],
        campaign_ids=tuple(touched),
    )


async def _insert(
    session: AsyncSession, marketer_id: int, events: Sequence[_Event], offers: Mapping[int, _Offer]
) -> list[_Event]:
    """Insert the events; those another request stored meanwhile are skipped, not an error."""
    if not events:
        return []
    rows = []
    # One order for every request, so that two overlapping ones cannot deadlock on the index.
    for event in sorted(events, key=lambda event: event.id):
        offer = offers[event.offer_id]
        rows.append(
            {
                "marketer_id": marketer_id,
                "external_id": event.id,
                "campaign_id": offer.campaign_id,
                "offer_id": event.offer_id,
                "member_id": offer.member_id,
                "kind": event.kind,
                "cost_cents": offer.cost_cents if event.kind == AdEventKind.COMPLETION else 0,
                "created_at": event.at,
            }
        )
    statement = insert_ignoring_conflicts(
        session, AdEvent, [AdEvent.marketer_id, AdEvent.external_id]
    ).returning(table(AdEvent).c.external_id)
    ids = set((await session.execute(statement, rows)).scalars())
    return [event for event in events if event.id in ids]


async def _complete(
    session: AsyncSession,
    completing: Mapping[int, _Event],
    offers: Mapping[int, _Offer],
    now: datetime,
) -> None:
    """Mark the offers completed and charge each; an offer completed meanwhile refuses all."""
    if not completing:
        return
    ids = sorted(completing)
    done = set(
        await session.scalars(
            update(Offer)
            .where(Offer.id.in_(ids), Offer.state == OfferState.CURRENT)
            .values(state=OfferState.COMPLETED)
            .returning(Offer.id)
        )
    )
    missed = [
        Problem(completing[offer_id].index, f"offer {offer_id} is completed, not current")
        for offer_id in ids
        if offer_id not in done
    ]
    if missed:
        raise IngestRejected(missed)
    await session.execute(
        insert(table(LedgerEntry)),
        [
            {
                "campaign_id": offers[offer_id].campaign_id,
                "kind": LedgerKind.CHARGE,
                "amount_cents": -offers[offer_id].cost_cents,
                "description": COMPLETION_DESCRIPTION,
                "created_at": now,
            }
            for offer_id in ids
        ],
    )


@dataclass(frozen=True, slots=True)
class LiveOffer:
    """An offer an ad server may show now, as the offers feed gives it."""

    id: int
    campaign_id: int
    member_handle: str
    band_id: int
    offer_amount_cents: int


async def live_offers(
    session: AsyncSession, marketer_id: int, *, after: int = 0, limit: int = 100
) -> list[LiveOffer]:
    """The marketer's current offers of active campaigns with an id above `after`, by id."""
    active = select(Campaign.id).where(
        Campaign.marketer_id == marketer_id,
        Campaign.launched_at.is_not(None),
        Campaign.deactivated_at.is_(None),
        Campaign.paused_at.is_(None),
    )
    rows = await session.execute(
        select(Offer.id, Offer.campaign_id, Member.handle, Offer.band_id, Offer.offer_amount_cents)
        .join(Member, Member.id == Offer.member_id)
        .where(Offer.campaign_id.in_(active), Offer.state == OfferState.CURRENT, Offer.id > after)
        .order_by(Offer.id)
        .limit(limit)
    )
    return [LiveOffer(*row) for row in rows]
