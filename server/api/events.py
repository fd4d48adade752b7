"""The stored event history of one topic, in the same shape as the WebSocket `event` frames."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status

from pulse_core.topics import TopicError, parse_topic
from pulse_data import eventlog
from server.deps import CurrentUser, SessionDep, StateDep
from server.schemas import ErrorOut

router = APIRouter(prefix="/api", tags=["events"])


@router.get(
    "/events",
    responses={401: {"model": ErrorOut}, 404: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
async def events(
    user: CurrentUser,
    session: SessionDep,
    state: StateDep,
    topic: Annotated[str, Query(max_length=64, description="a topic name")],
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    try:
        parsed = parse_topic(topic)
    except TopicError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    if not await state.topic_access.may_read(user, parsed):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"topic {topic!r} not found")
    stored = await eventlog.frames_after(session, parsed.name, after, limit)
    return [json.loads(event.frame) for event in stored]
