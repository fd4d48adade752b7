"""The WebSocket endpoint `/api/ws`: subscribe, unsubscribe and ping; events stream out."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, WebSocket
from sqlalchemy.exc import SQLAlchemyError

from pulse_core.names import CloseCode, ErrorCode
from pulse_core.protocol import (
    PONG_TEXT,
    Error,
    FrameError,
    Ping,
    Subscribe,
    Unsubscribed,
    encode,
    parse_client_frame,
)
from pulse_data.accounts import SessionEnded, SessionUser, session_user
from server.fanout import Connection
from server.security import InvalidToken, read_token
from server.state import ServerState

log = logging.getLogger(__name__)
router = APIRouter()

CLOSE_UNAUTHORIZED = CloseCode.UNAUTHORIZED
CLOSE_INTERNAL_ERROR = CloseCode.INTERNAL_ERROR


def _token(websocket: WebSocket) -> str | None:
    header = websocket.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return websocket.query_params.get("access_token")


class Refused(Exception):
    """The connection may not go on: close it with `code` and `reason`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


async def _authenticate(state: ServerState, token: str) -> tuple[SessionUser, datetime]:
    """The user of the token's session, if that session is valid now in the database, and when
    the connection must end (the token's or the session's expiry, whichever comes first)."""
    try:
        principal = read_token(state.secret_key, token)
    except InvalidToken as exc:
        raise Refused(CLOSE_UNAUTHORIZED, str(exc)) from None
    try:
        async with state.db.reader() as session:
            user = await session_user(session, principal.session_id)
    except SessionEnded as exc:
        raise Refused(CLOSE_UNAUTHORIZED, str(exc)) from None
    except (SQLAlchemyError, OSError) as exc:
        log.error("cannot check a WebSocket's session: %s", exc)
        raise Refused(
            CLOSE_INTERNAL_ERROR, "the database is not answering; reconnect shortly"
        ) from None
    if (user.user_id, user.marketer_id) != (principal.user_id, principal.marketer_id):
        raise Refused(CLOSE_UNAUTHORIZED, "invalid token: log in again")
    return user, min(principal.expires_at, user.expires_at)


@router.websocket("/api/ws")
async def websocket_endpoint(websocket: WebSocket) -> None:
    state: ServerState = websocket.app.state.pulse
    token = _token(websocket) or ""
    await websocket.accept()
    try:
        user, expires_at = await _authenticate(state, token)
    except Refused as refusal:
        await _close_quietly(websocket, refusal.code, refusal.reason)
        return
    # Watched from here on: a session ended after the check above is seen by the next look.
    ended = state.session_watch.watch(user.session_id)
    connection = Connection(
        websocket.send_text,
        websocket.close,
        queue_limit=state.settings.send_queue_frames,
        name=f"user {user.user_id}",
    )
    state.hub.add(connection)
    tasks: dict[str, asyncio.Future[Any]] = {
        "writer": asyncio.create_task(connection.run_writer()),
        "reader": asyncio.create_task(_read(websocket, state, user, connection)),
        "slow": asyncio.create_task(connection.slow.wait()),
        "expired": asyncio.create_task(_until(expires_at)),
        "ended": ended,
    }
    try:
        done, _ = await asyncio.wait(tasks.values(), return_when=asyncio.FIRST_COMPLETED)
    finally:
        state.session_watch.forget(user.session_id, ended)
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        state.hub.remove(connection)
    if ended in done and not ended.cancelled():
        await _close_quietly(websocket, CLOSE_UNAUTHORIZED, ended.result())
    elif tasks["slow"] in done:
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
    websocket: WebSocket, state: ServerState, user: SessionUser, connection: Connection
) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:
            await connection.put(
                encode(Error(ErrorCode.BAD_REQUEST, "send JSON text frames, not binary ones"))
            )
            continue
        try:
            frame = parse_client_frame(text)
        except FrameError as exc:
            await connection.put(encode(Error(exc.code, exc.message)))
            continue
        if isinstance(frame, Ping):
            await connection.put(PONG_TEXT)
        elif isinstance(frame, Subscribe):
            await _subscribe(state, user, connection, frame)
        else:
            state.hub.unsubscribe(connection, frame.topic.name)
            await connection.put(encode(Unsubscribed(frame.topic.name)))


async def _subscribe(
    state: ServerState, user: SessionUser, connection: Connection, frame: Subscribe
) -> None:
    topic = frame.topic.name
    limit = state.settings.max_topics_per_connection
    if topic not in connection.topics and len(connection.topics) >= limit:
        await connection.put(
            encode(
                Error(
                    ErrorCode.BAD_REQUEST,
                    f"at most {limit} topics per connection: unsubscribe from one first",
                    topic,
                )
            )
        )
        return
    try:
        if not await state.topic_access.may_read(user, frame.topic):
            await connection.put(
                encode(Error(ErrorCode.FORBIDDEN, f"you may not subscribe to {topic!r}", topic))
            )
            return
        await state.hub.subscribe(connection, topic, frame.after)
    except (SQLAlchemyError, OSError) as exc:
        raise ConnectionError(f"database unavailable while subscribing to {topic}") from exc
