"""The WebSocket endpoint `/api/ws`: subscribe, unsubscribe and ping; events stream out."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from fastapi import APIRouter, WebSocket
from sqlalchemy.exc import SQLAlchemyError

from pulse_core.names import CLOSE_UNAUTHORIZED, ErrorCode
from pulse_core.wire import (
    PONG_FRAME,
    FrameError,
    Ping,
    Subscribe,
    error_frame,
    parse_client_frame,
    unsubscribed_frame,
)
from server.fanout import Connection
from server.security import InvalidToken, Principal, read_token
from server.state import ServerState

log = logging.getLogger(__name__)
router = APIRouter()

CLOSE_INTERNAL_ERROR = 1011


def _token(websocket: WebSocket) -> str | None:
    header = websocket.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return websocket.query_params.get("access_token")


@router.websocket("/api/ws")
async def websocket_endpoint(websocket: WebSocket) -> None:
    state: ServerState = websocket.app.state.pulse
    try:
        principal = read_token(state.secret_key, _token(websocket) or "")
    except InvalidToken as exc:
        await websocket.accept()
        await websocket.close(CLOSE_UNAUTHORIZED, str(exc))
        return
    await websocket.accept()
    connection = Connection(
        websocket.send_text,
        websocket.close,
        queue_limit=state.settings.send_queue_frames,
        name=f"user {principal.user_id}",
    )
    state.hub.add(connection)
    tasks = {
        "writer": asyncio.create_task(connection.run_writer()),
        "reader": asyncio.create_task(_read(websocket, state, principal, connection)),
        "slow": asyncio.create_task(connection.slow.wait()),
        "expired": asyncio.create_task(_until(principal.expires_at)),
    }
    try:
        done, _ = await asyncio.wait(tasks.values(), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        state.hub.remove(connection)
    if tasks["slow"] in done:
        log.warning("closing slow consumer %s", connection.name)
        await connection.close_slow()
    elif tasks["expired"] in done:
        await _close_quietly(
            websocket, CLOSE_UNAUTHORIZED, "your session has expired: log in again"
        )
    elif tasks["reader"] in done and (failure := tasks["reader"].exception()) is not None:
        log.error("closing %s after an error: %s", connection.name, failure)
        await _close_quietly(websocket, CLOSE_INTERNAL_ERROR, "server error; reconnect shortly")


async def _until(moment: datetime) -> None:
    await asyncio.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))


async def _close_quietly(websocket: WebSocket, code: int, reason: str) -> None:
    try:
        async with asyncio.timeout(2):
            await websocket.close(code, reason)
    except Exception:
        pass


async def _read(
    websocket: WebSocket, state: ServerState, principal: Principal, connection: Connection
) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:
            await connection.put(
                error_frame(ErrorCode.BAD_REQUEST, "send JSON text frames, not binary ones")
            )
            continue
        try:
            frame = parse_client_frame(text)
        except FrameError as exc:
            await connection.put(error_frame(exc.code, exc.message))
            continue
        if isinstance(frame, Ping):
            await connection.put(PONG_FRAME)
        elif isinstance(frame, Subscribe):
            await _subscribe(state, principal, connection, frame)
        else:
            state.hub.unsubscribe(connection, frame.topic.name)
            await connection.put(unsubscribed_frame(frame.topic.name))


async def _subscribe(
    state: ServerState, principal: Principal, connection: Connection, frame: Subscribe
) -> None:
    topic = frame.topic.name
    limit = state.settings.max_topics_per_connection
    if topic not in connection.topics and len(connection.topics) >= limit:
        await connection.put(
            error_frame(
                ErrorCode.BAD_REQUEST,
                f"at most {limit} topics per connection: unsubscribe from one first",
                topic,
            )
        )
        return
    try:
        if not await state.topic_access.may_read(principal, frame.topic):
            await connection.put(
                error_frame(ErrorCode.FORBIDDEN, f"you may not subscribe to {topic!r}", topic)
            )
            return
        await state.hub.subscribe(connection, topic, frame.after)
    except (SQLAlchemyError, OSError) as exc:
        raise ConnectionError(f"database unavailable while subscribing to {topic}") from exc
