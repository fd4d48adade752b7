"""The JSON text of a marketer's whole campaign list, written by the database.

`GET /api/campaigns` of 10,000 campaigns is 8 MB of JSON. Read as rows and written by Python
(a dict per campaign, 60,000 time values and 30,000 amounts), most of the answer's time went into
making Python objects. Here one query joins each campaign to its target and its offer, ad and
ledger sums, and returns each campaign as JSON text in three pieces; Python only puts in the
target's bands (the same text for every campaign of a target) and joins the pieces.

The text is byte for byte what `list[CampaignOut]` serializes to (keys in its order, amounts
as Python writes the float `round(cents / 100, 2)`, times as `UtcText`); the tests compare both
on SQLite and PostgreSQL. An amount of 10 trillion or more (where the float's text is not the
exact cents) is not written here: the caller writes the list the slow way, as it does on
PostgreSQL (`writes_the_list_faster`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pydantic_core import to_json
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    String,
    case,
    cast,
    distinct,
    func,
    literal,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from pulse_core.stats import CampaignState
from pulse_core.topics import marketer_topic
from pulse_data import eventlog
from pulse_data.campaigns import UtcText
from pulse_data.models import (
    AdEvent,
    AdEventKind,
    Band,
    Campaign,
    LedgerEntry,
    Offer,
    OfferState,
    Target,
    TargetPopulation,
)

# Beyond this many cents the float of `cents_to_amount` may not print as the exact cents.
EXACT_CENTS = 10**15


class JsonString(FunctionElement[str]):
    """A text column as a JSON string (quoted and escaped as pydantic-core does)."""

    type = String()
    inherit_cache = True


@compiles(JsonString, "sqlite")
def _json_string_sqlite(element: JsonString, compiler: Any, **kw: Any) -> str:
    return f"json_quote({compiler.process(element.clauses, **kw)})"


@compiles(JsonString, "postgresql")
def _json_string_postgresql(element: JsonString, compiler: Any, **kw: Any) -> str:
    return f"to_json(CAST({compiler.process(element.clauses, **kw)} AS TEXT))::text"


def _text(value: Any) -> ColumnElement[str]:
    return cast(value, String)


def _number(value: Any) -> ColumnElement[int]:
    """A whole number (a count or a sum, NULL as 0)."""
    return cast(func.coalesce(value, 0), BigInteger)


def _amount(cents: ColumnElement[Any]) -> ColumnElement[str]:
    """Whole cents as the JSON of `cents_to_amount`: 150 -> 1.5, 105 -> 1.05, 0 -> 0.0, -5 ->
    -0.05, when below EXACT_CENTS."""
    whole = func.abs(cents)
    hundredths = whole % 100
    fraction = case(
        (hundredths == 0, literal("0")),
        (hundredths % 10 == 0, _text(hundredths // 10)),
        (hundredths < 10, literal("0") + _text(hundredths)),
        else_=_text(hundredths),
    )
    sign = case((cents < 0, literal("-")), else_=literal(""))
    return sign + _text(whole // 100) + literal(".") + fraction


def _time(value: Any) -> ColumnElement[str]:
    return case((value.is_(None), literal("null")), else_=_joined('"', UtcText(value), '"'))


def _state(campaign: Any) -> ColumnElement[str]:
    """`campaign_state` of the dates, in SQL."""
    return case(
        (campaign.deactivated_at.is_not(None), literal(CampaignState.ARCHIVED.value)),
        (
            campaign.paused_at.is_not(None) & campaign.launched_at.is_not(None),
            literal(CampaignState.PAUSED.value),
        ),
        (campaign.launched_at.is_not(None), literal(CampaignState.ACTIVE.value)),
        else_=literal(CampaignState.NOT_LAUNCHED.value),
    )


class Joined(FunctionElement[str]):
    """Text and columns one after the other, as text: SQLite's `||`, PostgreSQL's `concat`
    (its `||` and `format` cost more per argument). No part may be NULL."""

    type = String()
    inherit_cache = True


@compiles(Joined, "sqlite")
def _joined_sqlite(element: Joined, compiler: Any, **kw: Any) -> str:
    return " || ".join(compiler.process(part, **kw) for part in element.clauses)


@compiles(Joined, "postgresql")
def _joined_postgresql(element: Joined, compiler: Any, **kw: Any) -> str:
    return f"concat({compiler.process(element.clauses, **kw)})"


def _joined(*parts: Any) -> Joined:
    return Joined(*(literal(part, String) if isinstance(part, str) else part for part in parts))


def _listing_query(marketer_id: int) -> Any:
    mine = select(Campaign.id).where(Campaign.marketer_id == marketer_id)
    offers = (
        select(
            Offer.campaign_id,
            func.sum(case((Offer.state == OfferState.PENDING, 1), else_=0)).label("pending"),
            func.sum(case((Offer.state == OfferState.CURRENT, 1), else_=0)).label("current"),
            func.sum(case((Offer.state == OfferState.COMPLETED, 1), else_=0)).label("completed"),
            func.sum(
                case(
                    (
                        Offer.state.in_([OfferState.PENDING, OfferState.CURRENT]),
                        Offer.marketer_cost_cents,
                    ),
                    else_=0,
                )
            ).label("cost"),
        )
        .where(Offer.campaign_id.in_(mine))
        .group_by(Offer.campaign_id)
        .subquery()
    )
    ads = (
        select(
            AdEvent.campaign_id,
            func.count(distinct(AdEvent.member_id)).label("reach"),
            func.sum(case((AdEvent.kind == AdEventKind.BANNER_VIEW, 1), else_=0)).label("views"),
            func.sum(case((AdEvent.kind == AdEventKind.TEXT_JUMP, 1), else_=0)).label("jumps"),
            func.sum(AdEvent.cost_cents).label("spent"),
        )
        .where(AdEvent.campaign_id.in_(mine))
        .group_by(AdEvent.campaign_id)
        .subquery()
    )
    ledger = (
        select(LedgerEntry.campaign_id, func.sum(LedgerEntry.amount_cents).label("balance"))
        .where(LedgerEntry.campaign_id.in_(mine))
        .group_by(LedgerEntry.campaign_id)
        .subquery()
    )

    cost, spent, balance = _number(offers.c.cost), _number(ads.c.spent), _number(ledger.c.balance)
    exact = (
        (func.abs(cost) < EXACT_CENTS)
        & (func.abs(spent) < EXACT_CENTS)
        & (func.abs(balance) < EXACT_CENTS)
    )

    c, t = Campaign.__table__.c, Target.__table__.c
    head = _joined(
        '{"id":',
        c.id,
        ',"marketer_id":',
        c.marketer_id,
        ',"title":',
        JsonString(c.title),
        ',"description":',
        JsonString(c.description),
        ',"state":"',
        _state(c),
        '","target":{"id":',
        t.id,
        ',"title":',
        JsonString(t.title),
        ',"population_status":',
        JsonString(t.population_status),
        ',"last_populated_at":',
        _time(t.last_populated_at),
        '},"stats":{"target_population":',
    )
    middle = _joined(
        ',"pending_offers":',
        _number(offers.c.pending),
        ',"current_offers":',
        _number(offers.c.current),
        ',"completed_offers":',
        _number(offers.c.completed),
        ',"pending_spend":',
        _amount(cost),
        ',"spend_to_date":',
        _amount(spent),
        ',"balance":',
        _amount(balance),
        ',"unique_reach":',
        _number(ads.c.reach),
        ',"banner_views":',
        _number(ads.c.views),
        ',"text_jumps":',
        _number(ads.c.jumps),
        ',"bands":',
    )
    tail = _joined(
        '},"starts_at":',
        _time(c.starts_at),
        ',"ends_at":',
        _time(c.ends_at),
        ',"launched_at":',
        _time(c.launched_at),
        ',"deactivated_at":',
        _time(c.deactivated_at),
        ',"paused_at":',
        _time(c.paused_at),
        ',"bids":null,"as_of_seq":',
    )
    return (
        select(c.target_id, exact, head, middle, tail)
        .join_from(Campaign.__table__, Target.__table__, t.id == c.target_id)
        .outerjoin(offers, offers.c.campaign_id == c.id)
        .outerjoin(ads, ads.c.campaign_id == c.id)
        .outerjoin(ledger, ledger.c.campaign_id == c.id)
        .where(c.marketer_id == marketer_id)
        .order_by(c.id)
    )


def writes_the_list_faster(session: AsyncSession) -> bool:
    """Whether the database's text beats Python's for this session: on SQLite (10,006
    campaigns ~2x faster); PostgreSQL spends longer making the text (`concat`, `to_json` and
    `to_char` ~30 us a campaign) than Python does with its rows."""
    return session.get_bind().dialect.name == "sqlite"


async def campaign_list_json(session: AsyncSession, marketer_id: int) -> bytes | None:
    """The JSON of `list[CampaignOut]` for every campaign of a marketer, by id.

    None when an amount is too large to write here exactly: use `campaign_listing` then.
    Call it in a read session, as `campaign_listing`.
    """
    as_of_seq = await eventlog.head(session, marketer_topic(marketer_id))
    rows = (await session.execute(_listing_query(marketer_id))).all()
    if not rows:
        return b"[]"
    bands_of: dict[int, list[dict[str, Any]]] = defaultdict(list)
    targets = select(Campaign.target_id).where(Campaign.marketer_id == marketer_id)
    for band_id, target_id, level, name, population in await session.execute(
        select(Band.id, Band.target_id, Band.level, Band.name, func.count(TargetPopulation.id))
        .outerjoin(TargetPopulation, TargetPopulation.band_id == Band.id)
        .where(Band.target_id.in_(targets))
        .group_by(Band.id, Band.target_id, Band.level, Band.name)
        .order_by(Band.target_id, Band.level)
    ):
        bands_of[target_id].append(
            {"band_id": band_id, "level": level, "name": name, "population": population}
        )
    population_text = {
        target_id: str(sum(band["population"] for band in bands))
        for target_id, bands in bands_of.items()
    }
    bands_text = {target_id: to_json(bands).decode() for target_id, bands in bands_of.items()}
    end = f"{as_of_seq}}}"
    parts: list[str] = []
    append = parts.append
    for target_id, exact, head, middle, tail in rows:
        if not exact:
            return None
        append(head)
        append(population_text.get(target_id, "0"))
        append(middle)
        append(bands_text.get(target_id, "[]"))
        append(tail)
        append(end)
        append(",")
    parts[-1] = "]"
    return ("[" + "".join(parts)).encode()
