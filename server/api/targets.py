"""Trait groups and the marketer's targets: listing them, and creating a target."""

from __future__ import annotations

from fastapi import APIRouter

from pulse_data.targets import (
    GroupChoice,
    InvalidField,
    TargetView,
    create_target,
    get_target,
    list_targets,
    trait_groups,
)
from server.deps import CurrentUser, SessionDep, StateDep, TargetCreator
from server.schemas import (
    ErrorOut,
    TargetBandOut,
    TargetDetailOut,
    TargetGroupOut,
    TargetIn,
    TraitGroupOut,
    TraitOut,
    invalid_field,
)

router = APIRouter(prefix="/api", tags=["targets"])


def target_out(view: TargetView) -> TargetDetailOut:
    return TargetDetailOut(
        id=view.id,
        title=view.title,
        population_status=view.population_status,
        last_populated_at=view.last_populated_at,
        created_at=view.created_at,
        bands=[
            TargetBandOut(id=b.band_id, level=b.level, name=b.name, population=b.population)
            for b in view.bands
        ],
        groups=[
            TargetGroupOut(trait_group_id=g.trait_group_id, trait_ids=list(g.trait_ids))
            for g in view.groups
        ],
    )


@router.get("/traits", responses={401: {"model": ErrorOut}})
async def traits(user: CurrentUser, session: SessionDep) -> list[TraitGroupOut]:
    return [
        TraitGroupOut(
            id=group.id,
            name=group.name,
            traits=[TraitOut(id=trait_id, name=name) for trait_id, name in group.traits],
        )
        for group in await trait_groups(session)
    ]


@router.get("/targets", responses={401: {"model": ErrorOut}})
async def targets(user: CurrentUser, session: SessionDep) -> list[TargetDetailOut]:
    return [target_out(view) for view in await list_targets(session, user.marketer_id)]


@router.post(
    "/targets", status_code=201, responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}}
)
async def create(body: TargetIn, user: TargetCreator, state: StateDep) -> TargetDetailOut:
    groups = [GroupChoice(g.trait_group_id, tuple(g.trait_ids)) for g in body.groups]
    try:
        target_id = await create_target(state.db, user.marketer_id, user.actor, body.title, groups)
    except InvalidField as exc:
        raise invalid_field(exc.field, exc.message) from None
    async with state.db.reader() as session:
        return target_out(await get_target(session, user.marketer_id, target_id))
