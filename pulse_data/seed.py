"""Loading the demo data of interfaces.md ("Demo data") through the real populate and offer code."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pulse_core.stats import CampaignState
from pulse_data import seed_data
from pulse_data.database import Database
from pulse_data.models import (
    Bid,
    Campaign,
    LedgerEntry,
    LedgerKind,
    Marketer,
    Member,
    MemberTag,
    Offer,
    OfferState,
    Target,
    TargetTrait,
    TargetTraitGroup,
    Trait,
    TraitGroup,
    User,
    utcnow,
)
from pulse_data.offers import activate_due_offers, create_offers
from pulse_data.passwords import hash_password
from pulse_data.population import ensure_bands, populate_target
from pulse_data.seed_data import DemoMarketer
from pulse_data.sqlutil import table
from pulse_data.stats import campaign_stats
from pulse_data.traffic import simulate_ad_activity

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
PROGRESS_TOTAL = 100
MEMBER_BATCH = 5000
POPULATE_BATCH = 2000
CURRENT_SHARE = 5  # one offer in five is already current
ACTIVATION_WAVES = 6  # the other pending offers go live in waves, so the demo's stats move
ACTIVATION_WAVE_MINUTES = 5
MAX_TRAFFIC_ROUNDS = 30


async def demo_data_exists(db: Database) -> bool:
    names = [marketer.name for marketer in seed_data.MARKETERS]
    async with db.reader() as session:
        return (
            await session.scalar(select(Marketer.id).where(Marketer.name.in_(names)))
        ) is not None


def _batches(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def _traits(session: AsyncSession) -> dict[tuple[str, str], int]:
    """Get or create every demo trait group and trait; returns (group, trait) -> trait id."""
    group_ids: dict[str, int] = dict(
        (await session.execute(select(TraitGroup.name, TraitGroup.id))).all()
    )
    for name in seed_data.TRAIT_GROUPS:
        if name not in group_ids:
            group_ids[name] = (
                await session.execute(insert(TraitGroup).values(name=name).returning(TraitGroup.id))
            ).scalar_one()
    rows = await session.execute(select(Trait.trait_group_id, Trait.name, Trait.id))
    existing = {(group_id, name): trait_id for group_id, name, trait_id in rows}
    result: dict[tuple[str, str], int] = {}
    for group, values in seed_data.TRAIT_GROUPS.items():
        for value in values:
            key = (group_ids[group], value)
            if key not in existing:
                existing[key] = (
                    await session.execute(
                        insert(Trait)
                        .values(trait_group_id=group_ids[group], name=value)
                        .returning(Trait.id)
                    )
                ).scalar_one()
            result[(group, value)] = existing[key]
    return result


def _member_tags(rng: random.Random, traits: dict[tuple[str, str], int]) -> list[int]:
    tags: list[int] = []
    for group, values in seed_data.TRAIT_GROUPS.items():
        how_many = (
            rng.randint(1, seed_data.MAX_INTERESTS) if group == seed_data.MULTI_VALUED_GROUP else 1
        )
        tags.extend(traits[(group, value)] for value in rng.sample(values, how_many))
    return tags


async def _members(
    session: AsyncSession,
    count: int,
    rng: random.Random,
    traits: dict[tuple[str, str], int],
    report: Callable[[str, float], None],
) -> None:
    for start in range(0, count, MEMBER_BATCH):
        size = min(MEMBER_BATCH, count - start)
        before = await session.scalar(select(func.coalesce(func.max(Member.id), 0)))
        await session.execute(
            insert(table(Member)),
            [{"handle": f"demo-member-{start + n + 1:06d}"} for n in range(size)],
        )
        ids = await session.scalars(select(Member.id).where(Member.id > before).order_by(Member.id))
        tags = [
            {"member_id": member_id, "trait_id": trait_id}
            for member_id in ids
            for trait_id in _member_tags(rng, traits)
        ]
        await session.execute(insert(table(MemberTag)), tags)
        report(f"Creating members ({start + size:,} of {count:,})", (start + size) / count)


def _ring_bids(bullseye: tuple[int, int], rings: int) -> list[tuple[int, int]]:
    """Bids per band, level 0 first, falling outward."""
    amount, cost = bullseye
    bids = []
    for _ in range(rings):
        bids.append((amount, cost))
        amount = max(1, round(amount * seed_data.RING_BID_FACTOR))
        cost = max(amount, round(cost * seed_data.RING_BID_FACTOR))
    return bids


async def _marketer(
    session: AsyncSession,
    spec: DemoMarketer,
    traits: dict[tuple[str, str], int],
    password_hashes: dict[str, str],
) -> tuple[dict[str, int], dict[int, CampaignState]]:
    """Create one marketer's users, targets and campaigns; returns target ids, campaign states."""
    marketer_id = await session.scalar(
        insert(Marketer).values(name=spec.name).returning(Marketer.id)
    )
    await session.execute(
        insert(User),
        [
            {
                "marketer_id": marketer_id,
                "email": email,
                "name": name,
                "role": role.value,
                "password_hash": password_hashes[email],
            }
            for email, name, role in spec.users
        ],
    )
    group_ids = dict((await session.execute(select(TraitGroup.name, TraitGroup.id))).all())
    targets: dict[str, int] = {}
    bands: dict[str, dict[int, int]] = {}
    for target in spec.targets:
        target_id = await session.scalar(
            insert(Target).values(marketer_id=marketer_id, title=target.title).returning(Target.id)
        )
        assert target_id is not None
        await session.execute(
            insert(TargetTraitGroup),
            [
                {"target_id": target_id, "trait_group_id": group_ids[group], "position": position}
                for position, (group, _) in enumerate(target.groups)
            ],
        )
        await session.execute(
            insert(TargetTrait),
            [
                {"target_id": target_id, "trait_id": traits[(group, value)]}
                for group, values in target.groups
                for value in values
            ],
        )
        targets[target.key] = target_id
        bands[target.key] = await ensure_bands(session, target_id)

    now = utcnow()
    states: dict[int, CampaignState] = {}
    for campaign in spec.campaigns:
        launched = campaign.state is not CampaignState.NOT_LAUNCHED
        campaign_id = await session.scalar(
            insert(Campaign)
            .values(
                marketer_id=marketer_id,
                target_id=targets[campaign.target],
                title=campaign.title,
                description=campaign.description,
                starts_at=now - timedelta(days=30 if launched else -7),
                ends_at=now + timedelta(days=60),
                launched_at=now - timedelta(days=21) if launched else None,
            )
            .returning(Campaign.id)
        )
        assert campaign_id is not None
        band_ids = bands[campaign.target]
        await session.execute(
            insert(Bid),
            [
                {
                    "campaign_id": campaign_id,
                    "band_id": band_ids[level],
                    "offer_amount_cents": amount,
                    "marketer_cost_cents": cost,
                }
                for level, (amount, cost) in enumerate(
                    _ring_bids(campaign.bullseye_bid, len(band_ids))
                )
            ],
        )
        await session.execute(
            insert(LedgerEntry).values(
                campaign_id=campaign_id,
                amount_cents=seed_data.DEPOSIT_CENTS,
                kind=LedgerKind.DEPOSIT,
                description=seed_data.DEPOSIT_DESCRIPTION,
            )
        )
        states[campaign_id] = campaign.state
    return targets, states


async def _schedule_activations(db: Database, active: list[int], archived: list[int]) -> None:
    """Make a share of the active campaigns' offers current and let the rest go live in waves.

    Campaigns about to be archived get every offer current: archived campaigns never activate.
    """
    now = utcnow()
    async with db.writer() as session:
        pending = (Offer.campaign_id.in_(active), Offer.state == OfferState.PENDING)
        for wave in range(ACTIVATION_WAVES):
            await session.execute(
                update(Offer)
                .where(*pending, Offer.member_id % ACTIVATION_WAVES == wave)
                .values(activate_at=now + timedelta(minutes=ACTIVATION_WAVE_MINUTES * (wave + 1)))
            )
        await session.execute(
            update(Offer)
            .where(
                (Offer.campaign_id.in_(archived))
                | (Offer.campaign_id.in_(active) & (Offer.member_id % CURRENT_SHARE == 0))
            )
            .values(activate_at=now - timedelta(seconds=1))
        )
        await session.commit()
    await activate_due_offers(db, None, now)


async def _traffic_until_every_stat_moves(
    db: Database, campaign_ids: list[int], rng: random.Random
) -> None:
    for _ in range(MAX_TRAFFIC_ROUNDS):
        await simulate_ad_activity(db, None, rng=rng, max_offers=400)
        async with db.reader() as session:
            stats = await campaign_stats(session, campaign_ids=campaign_ids)
        if all(s.banner_views and s.text_jumps and s.spend_to_date for s in stats.values()):
            return
    log.warning("demo traffic left some campaign stats at zero")


async def seed_demo(
    db: Database,
    *,
    members: int = 20_000,
    progress: Progress | None = None,
    rng_seed: int = 7,
) -> bool:
    """Load the demo data; False (and nothing written) when it is already there.

    `progress(step, done, total)` reports the whole seed's progress, `total` being 100.
    """

    def report(step: str, fraction: float, start: int = 0, end: int = PROGRESS_TOTAL) -> None:
        if progress is not None:
            progress(step, start + round((end - start) * fraction), PROGRESS_TOTAL)

    if await demo_data_exists(db):
        return False
    rng = random.Random(rng_seed)
    report("Hashing the demo password", 0)
    # One hash per user: each has a salt of its own, so no two users share a hash.
    password_hashes = {
        email: await asyncio.to_thread(hash_password, seed_data.DEMO_PASSWORD)
        for spec in seed_data.MARKETERS
        for email, _, _ in spec.users
    }

    targets: dict[str, int] = {}
    states: dict[int, CampaignState] = {}
    try:
        async with db.writer() as session:
            traits = await _traits(session)
            await _members(session, members, rng, traits, lambda s, f: report(s, f, 2, 50))
            report("Creating marketers, targets and campaigns", 0, 50)
            for spec in seed_data.MARKETERS:
                marketer_targets, marketer_states = await _marketer(
                    session, spec, traits, password_hashes
                )
                targets.update(marketer_targets)
                states.update(marketer_states)
            await session.commit()
    except IntegrityError:
        log.info("demo data was created meanwhile by another process")
        return False

    to_populate = [
        targets[target.key]
        for spec in seed_data.MARKETERS
        for target in spec.targets
        if target.populated
    ]
    for n, target_id in enumerate(to_populate):
        report("Populating targets", n / len(to_populate), 52, 80)
        await populate_target(db, None, target_id, batch_size=POPULATE_BATCH)

    launched = [cid for cid, state in states.items() if state is not CampaignState.NOT_LAUNCHED]
    for n, campaign_id in enumerate(launched):
        report("Creating offers", n / len(launched), 80, 90)
        await create_offers(db, None, campaign_id, activation_delay=timedelta(hours=1))
    active = [cid for cid, state in states.items() if state is CampaignState.ACTIVE]
    archived = [cid for cid, state in states.items() if state is CampaignState.ARCHIVED]
    await _schedule_activations(db, active, archived)

    report("Simulating ad traffic", 0, 90)
    await _traffic_until_every_stat_moves(db, launched, rng)
    async with db.writer() as session:
        await session.execute(
            update(Campaign)
            .where(Campaign.id.in_(archived))
            .values(deactivated_at=utcnow() - timedelta(days=2))
        )
        await session.commit()
    report("Demo data loaded", 1)
    return True
