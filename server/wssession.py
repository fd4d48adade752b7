"""One `/api/ws` connection's logic, whatever carries its bytes (docs/protocol.md).

`Session` authenticates the token, answers client frames (ping, subscribe with its limits and
replay, unsubscribe), and closes the connection for the product's reasons: a bad or ended
session (4401), an expired one (4401), a slow consumer (4408), a server error (1011). It is
the hub's subscriber. Two thin adapters move its frames:

- `server.ws_native.NativeSession`: uvicorn's WebSocket protocol object, writing WebSocket
  frames straight into the transport (the normal path);
- `server.ws.QueuedSession`: a FastAPI endpoint over ASGI, with a bounded queue and a writer
  (the fallback under another server).

An idle session holds no task: the end of its session is a future's callback, and its expiry
an entry in `Expiries` (one timer per second in which sessions expire, not one per session).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any

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
from server.fanout import LatencySink
from server.security import InvalidToken, read_token

if TYPE_CHECKING:
    from server.state import ServerState

log = logging.getLogger("server.ws")

EXPIRED = "your session has expired: log in again"
SERVER_ERROR = "server error; reconnect shortly"
SLOW_REASON = "slow consumer"
SLOW_MESSAGE = "you were not reading events fast enough; reconnect and resume with 'after'"
BINARY_MESSAGE = "send JSON text frames, not binary ones"


def bearer_token(authorization: str, access_token: str | None) -> str:
    """The login token of a WebSocket request: `Authorization: Bearer`, else `?access_token=`."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return access_token or ""


class Refused(Exception):
    """The connection may not go on: close it with `code` and `reason`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


async def authenticate(state: ServerState, token: str) -> tuple[SessionUser, datetime]:
    """The user of the token's session, if that session is valid now in the database, and when
    the connection must end (the token's or the session's expiry, whichever comes first)."""
    try:
        principal = read_token(state.secret_key, token)
    except InvalidToken as exc:
        raise Refused(CloseCode.UNAUTHORIZED, str(exc)) from None
    try:
        async with state.db.lookup() as session:
            user = await session_user(session, principal.session_id)
    except SessionEnded as exc:
        raise Refused(CloseCode.UNAUTHORIZED, str(exc)) from None
    except (SQLAlchemyError, OSError) as exc:
        log.error("cannot check a WebSocket's session: %s", exc)
        raise Refused(
            CloseCode.INTERNAL_ERROR, "the database is not answering; reconnect shortly"
        ) from None
    if (user.user_id, user.marketer_id) != (principal.user_id, principal.marketer_id):
        raise Refused(CloseCode.UNAUTHORIZED, "invalid token: log in again")
    return user, min(principal.expires_at, user.expires_at)


class Expiries:
    """The sessions that expire, by the second (rounded up): one timer per such second."""

    def __init__(self) -> None:
        self._due: dict[int, set[Session]] = {}

    def add(self, session: Session, at: float) -> int:
        """Close `session` as expired at Unix time `at` (or within the second after it)."""
        second = math.ceil(at)
        sessions = self._due.get(second)
        if sessions is None:
            sessions = self._due[second] = set()
            delay = max(0.0, second - time.time())
            asyncio.get_running_loop().call_later(delay, self._expire, second)
        sessions.add(session)
        return second

    def discard(self, session: Session, second: int) -> None:
        sessions = self._due.get(second)
        if sessions is not None:
            sessions.discard(session)

    def _expire(self, second: int) -> None:
        for session in list(self._due.pop(second, ())):
            session.close(CloseCode.UNAUTHORIZED, EXPIRED)

    def __len__(self) -> int:
        return sum(len(sessions) for sessions in self._due.values())


class Session:
    """One connection's state; the adapters supply `offer`, `send`, `put` and `_close`."""

    __slots__ = ("_ended", "_expiry", "closed", "slow", "state", "topics", "user")

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.user: SessionUser | None = None
        self.topics: set[str] = set()
        self.slow = False
        self.closed = False
        self._expiry: int | None = None  # the second of its `Expiries` entry
        self._ended: asyncio.Future[str] | None = None

    # ---- what an adapter supplies ---------------------------------------------------------

    def offer(self, frame: str, wire: bytes) -> None:
        """A live event frame, sent without waiting (see `server.fanout.Subscriber`)."""
        raise NotImplementedError

    def offer_many(self, frames: list[tuple[str, bytes]]) -> None:
        """Several live event frames, in order (`server.fanout.Subscriber`)."""
        for frame, wire in frames:
            self.offer(frame, wire)

    def send(self, text: str) -> None:
        """A reply, sent without waiting, after everything sent before it."""
        raise NotImplementedError

    async def put(self, frame: str) -> None:
        """A frame of a replay (or a reply during one), sent once the client keeps up."""
        raise NotImplementedError

    def _close(self, code: int, reason: str, last: str | None) -> None:
        """Send `last` (if any) and a close frame with `code` and `reason`; then nothing more."""
        raise NotImplementedError

    def probe(self, frame: str, committed: float, sink: LatencySink) -> None:
        raise NotImplementedError

    # ---- the shared logic ----------------------------------------------------------------

    @property
    def name(self) -> str:
        return f"user {self.user.user_id}" if self.user is not None else "a WebSocket"

    @property
    def held_limit(self) -> int:
        return self.state.settings.send_queue_frames

    async def start(self, token: str) -> bool:
        """Authenticate; then the session is the hub's, watched until it ends or expires.
        False if it was refused (and closed) or the client left meanwhile."""
        try:
            user, expires_at = await authenticate(self.state, token)
        except Refused as refusal:
            self.close(refusal.code, refusal.reason)
            return False
        if self.closed:
            return False
        self.user = user
        # Watched from here on: a session ended after the check above is seen by the next look.
        self._ended = self.state.session_watch.watch(user.session_id)
        self._ended.add_done_callback(self._on_ended)
        self._expiry = self.state.expiries.add(self, expires_at.timestamp())
        self.state.hub.add(self)
        return True

    def receive(self, text: str | None) -> Coroutine[Any, Any, None] | None:
        """Answer a client frame (None: a binary one); a subscribe returns the coroutine that
        does it, to be awaited before the next frame is received."""
        if text is None:
            self.send(encode(Error(ErrorCode.BAD_REQUEST, BINARY_MESSAGE)))
            return None
        try:
            frame = parse_client_frame(text)
        except FrameError as exc:
            self.send(encode(Error(exc.code, exc.message)))
            return None
        if isinstance(frame, Ping):
            self.send(PONG_TEXT)
            return None
        if isinstance(frame, Subscribe):
            return self._subscribe(frame)
        self.state.hub.unsubscribe(self, frame.topic.name)
        self.send(encode(Unsubscribed(frame.topic.name)))
        return None

    async def _subscribe(self, frame: Subscribe) -> None:
        assert self.user is not None
        topic = frame.topic.name
        limit = self.state.settings.max_topics_per_connection
        if topic not in self.topics and len(self.topics) >= limit:
            message = f"at most {limit} topics per connection: unsubscribe from one first"
            await self.put(encode(Error(ErrorCode.BAD_REQUEST, message, topic)))
            return
        try:
            if not await self.state.topic_access.may_read(self.user, frame.topic):
                message = f"you may not subscribe to {topic!r}"
                await self.put(encode(Error(ErrorCode.FORBIDDEN, message, topic)))
                return
            await self.state.hub.subscribe(self, topic, frame.after)
        except (SQLAlchemyError, OSError) as exc:
            raise ConnectionError(f"database unavailable while subscribing to {topic}") from exc

    def failed(self, failure: BaseException) -> None:
        log.error("closing %s after an error: %s", self.name, failure)
        self.close(CloseCode.INTERNAL_ERROR, SERVER_ERROR)

    def mark_slow(self) -> None:
        """A slow consumer: told so and closed on the next turn of the loop."""
        if self.slow or self.closed:
            return
        self.slow = True
        asyncio.get_running_loop().call_soon(self._close_slow)

    def _close_slow(self) -> None:
        log.warning("closing slow consumer %s", self.name)
        self.close(
            CloseCode.SLOW_CONSUMER,
            SLOW_REASON,
            encode(Error(ErrorCode.SLOW_CONSUMER, SLOW_MESSAGE)),
        )

    def _on_ended(self, ended: asyncio.Future[str]) -> None:
        if not ended.cancelled():
            self.close(CloseCode.UNAUTHORIZED, ended.result())

    def close(self, code: int, reason: str, last: str | None = None) -> None:
        """Close the connection for `reason` (once)."""
        if self.closed:
            return
        self.detach()
        self._close(code, reason, last)

    def detach(self) -> None:
        """The connection is closing or gone: leave the hub, stop watching (idempotent)."""
        self.closed = True
        if self._expiry is not None:
            self.state.expiries.discard(self, self._expiry)
            self._expiry = None
        if self._ended is not None:
            assert self.user is not None
            self._ended.remove_done_callback(self._on_ended)
            self.state.session_watch.forget(self.user.session_id, self._ended)
            self._ended = None
        self.state.hub.remove(self)
