"""Trait groups, and a marketer's targets: reading them and creating one from trait groups."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from pulse_core.names import AuditAction
from pulse_core.stats import BandCount, PopulationStatus
from pulse_data import audit
from pulse_data.audit import Actor
from pulse_data.database import Database
from pulse_data.models import (
    Band,
    Target,
    TargetPopulation,
    TargetTrait,
    TargetTraitGroup,
    Trait,
    TraitGroup,
    utcnow,
)
from pulse_data.population import ensure_bands

Field = tuple[str | int, ...]


class InvalidField(ValueError):
    """Input that a request's schema cannot catch; `field` is its path in the request body."""

    def __init__(self, field: Field, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class TargetNotFound(LookupError):
    """No such target for this marketer (another marketer's target is not found either)."""


@dataclass(frozen=True, slots=True)
class TraitGroupView:
    id: int
    name: str
    traits: tuple[tuple[int, str], ...]  # (id, name), by name


@dataclass(frozen=True, slots=True)
class GroupChoice:
    """A trait group of a target and the traits it accepts (any one of them matches)."""

    trait_group_id: int
    trait_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class TargetView:
    id: int
    title: str
    population_status: PopulationStatus
    last_populated_at: datetime | None
    created_at: datetime
    bands: tuple[BandCount, ...]  # bullseye (level 0) first
    groups: tuple[GroupChoice, ...]  # in ring order: the last one is dropped first


async def trait_groups(session: AsyncSession) -> list[TraitGroupView]:
    """Every trait group with its traits, groups by name."""
    groups = (await session.execute(select(TraitGroup.id, TraitGroup.name))).all()
    traits: dict[int, list[tuple[int, str]]] = defaultdict(list)
    rows = await session.execute(
        select(Trait.trait_group_id, Trait.id, Trait.name).order_by(Trait.name, Trait.id)
    )
    for group_id, trait_id, name in rows:
        traits[group_id].append((trait_id, name))
    return [
        TraitGroupView(group_id, name, tuple(traits[group_id]))
        for group_id, name in sorted(groups, key=lambda row: (row[1], row[0]))
    ]


async def list_targets(
    session: AsyncSession, marketer_id: int, target_id: int | None = None
) -> list[TargetView]:
    """The marketer's targets (or one of them), by id, with their bands and trait groups."""
    query = select(Target).where(Target.marketer_id == marketer_id).order_by(Target.id)
    if target_id is not None:
        query = query.where(Target.id == target_id)
    targets = (await session.scalars(query)).all()
    if not targets:
        return []
    ids = [target.id for target in targets]
    bands: dict[int, list[BandCount]] = defaultdict(list)
    band_rows = await session.execute(
        select(Band.target_id, Band.id, Band.level, Band.name, func.count(TargetPopulation.id))
        .outerjoin(TargetPopulation, TargetPopulation.band_id == Band.id)
        .where(Band.target_id.in_(ids))
        .group_by(Band.target_id, Band.id, Band.level, Band.name)
        .order_by(Band.target_id, Band.level)
    )
    for owner, band_id, level, name, population in band_rows:
        bands[owner].append(BandCount(band_id, level, name, population))
    accepted: dict[tuple[int, int], list[int]] = defaultdict(list)
    trait_rows = await session.execute(
        select(TargetTrait.target_id, Trait.trait_group_id, Trait.id)
        .join(Trait, Trait.id == TargetTrait.trait_id)
        .where(TargetTrait.target_id.in_(ids))
        .order_by(Trait.id)
    )
    for owner, group_id, trait_id in trait_rows:
        accepted[(owner, group_id)].append(trait_id)
    groups: dict[int, list[GroupChoice]] = defaultdict(list)
    group_rows = await session.execute(
        select(TargetTraitGroup.target_id, TargetTraitGroup.trait_group_id)
        .where(TargetTraitGroup.target_id.in_(ids))
        .order_by(TargetTraitGroup.position, TargetTraitGroup.trait_group_id)
    )
    for owner, group_id in group_rows:
        groups[owner].append(GroupChoice(group_id, tuple(accepted[(owner, group_id)])))
    return [
        TargetView(
            id=target.id,
            title=target.title,
            population_status=PopulationStatus(target.population_status),
            last_populated_at=target.last_populated_at,
            created_at=target.created_at,
            bands=tuple(bands[target.id]),
            groups=tuple(groups[target.id]),
        )
        for target in targets
    ]


async def get_target(session: AsyncSession, marketer_id: int, target_id: int) -> TargetView:
    views = await list_targets(session, marketer_id, target_id)
    if not views:
        raise TargetNotFound(target_id)
    return views[0]


async def _check_groups(session: AsyncSession, groups: Sequence[GroupChoice]) -> None:
    """Raise `InvalidField` naming the first group or trait that does not fit."""
    if not groups:
        raise InvalidField(("groups",), "give at least one trait group")
    group_ids = {group.trait_group_id for group in groups}
    known = set(
        (await session.scalars(select(TraitGroup.id).where(TraitGroup.id.in_(group_ids)))).all()
    )
    trait_ids = {trait_id for group in groups for trait_id in group.trait_ids}
    group_of = dict(
        (
            await session.execute(
                select(Trait.id, Trait.trait_group_id).where(Trait.id.in_(trait_ids))
            )
        ).all()
    )
    seen: set[int] = set()
    for n, group in enumerate(groups):
        where: Field = ("groups", n, "trait_group_id")
        if group.trait_group_id not in known:
            raise InvalidField(where, f"no trait group has id {group.trait_group_id}")
        if group.trait_group_id in seen:
            raise InvalidField(where, f"trait group {group.trait_group_id} is given twice")
        seen.add(group.trait_group_id)
        if not group.trait_ids:
            raise InvalidField(("groups", n, "trait_ids"), "give at least one trait")
        traits_seen: set[int] = set()
        for m, trait_id in enumerate(group.trait_ids):
            where = ("groups", n, "trait_ids", m)
            if trait_id not in group_of:
                raise InvalidField(where, f"no trait has id {trait_id}")
            if group_of[trait_id] != group.trait_group_id:
                raise InvalidField(
                    where, f"trait {trait_id} is not of trait group {group.trait_group_id}"
                )
            if trait_id in traits_seen:
                raise InvalidField(where, f"trait {trait_id} is given twice")
            traits_seen.add(trait_id)


async def create_target(
    db: Database, marketer_id: int, actor: Actor, title: str, groups: Sequence[GroupChoice]
) -> int:
    """Create a `not_populated` target with one band per group; returns its id. Audited."""
    async with db.writer() as session:
        await _check_groups(session, groups)
        target_id = (
            await session.execute(
                insert(Target)
                .values(
                    marketer_id=marketer_id,
                    title=title,
                    population_status=PopulationStatus.NOT_POPULATED.value,
                    created_at=utcnow(),
                )
                .returning(Target.id)
            )
        ).scalar_one()
        await session.execute(
            insert(TargetTraitGroup),
            [
                {"target_id": target_id, "trait_group_id": group.trait_group_id, "position": n}
                for n, group in enumerate(groups)
            ],
        )
        await session.execute(
            insert(TargetTrait),
            [
                {"target_id": target_id, "trait_id": trait_id}
                for group in groups
                for trait_id in group.trait_ids
            ],
        )
        await ensure_bands(session, target_id)
        await audit.record(
            session,
            marketer_id=marketer_id,
            actor=actor,
            action=AuditAction.TARGET_CREATED,
            detail={
                "target_id": target_id,
                "title": title,
                "groups": [
                    {"trait_group_id": g.trait_group_id, "trait_ids": list(g.trait_ids)}
                    for g in groups
                ],
            },
        )
        await session.commit()
    return int(target_id)
