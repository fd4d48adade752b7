"""Closes the WebSockets of sessions that ended anywhere: this server, another, or `pulse`.

Every second it asks the database for the sessions ended since its last look (looking a little
further back, so that a change committed while it looked is not missed) and ends the open
WebSockets of those sessions with the reason. `/readyz` reports its health.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from pulse_data.accounts import end_message, ended_since
from pulse_data.database import Database
from pulse_data.models import utcnow

log = logging.getLogger(__name__)

LOOK_INTERVAL_SECONDS = 1.0
# How far back each look reaches before the previous one: a session ended (its `ended_at`
# taken) up to this long before the commit that made it visible is still seen.
OVERLAP_SECONDS = 5.0
# Without a successful look for this long, the server is not ready.
STALE_SECONDS = 5.0
# A look that hangs (a database that stopped answering mid-query) counts as a failed one.
LOOK_TIMEOUT_SECONDS = 5.0


@dataclass(slots=True)
class WatchHealth:
    looks: int = 0
    failures: int = 0
    websockets_closed: int = 0
    last_look_at: datetime | None = None  # of the last successful look (UTC)
    last_error: str | None = None


class SessionWatcher:
    """The open WebSockets of this server by session, and the loop that ends them."""

    def __init__(
        self,
        db: Database,
        *,
        interval: float = LOOK_INTERVAL_SECONDS,
        overlap: float = OVERLAP_SECONDS,
    ) -> None:
        self._db = db
        self._interval = interval
        self._overlap = timedelta(seconds=overlap)
        self._open: dict[str, set[asyncio.Future[str]]] = {}
        self._last_look: float | None = None  # time.monotonic() of the last successful look
        self.health = WatchHealth()

    def watch(self, session_id: str) -> asyncio.Future[str]:
        """A future that gets the reason when the session ends; `forget` it once closed."""
        ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._open.setdefault(session_id, set()).add(ended)
        return ended

    def forget(self, session_id: str, ended: asyncio.Future[str]) -> None:
        futures = self._open.get(session_id)
        if futures is not None:
            futures.discard(ended)
            if not futures:
                del self._open[session_id]

    @property
    def sessions(self) -> int:
        """Sessions with an open WebSocket here."""
        return len(self._open)

    def end(self, session_id: str, reason: str) -> int:
        """End the session's open WebSockets here with `reason`; returns how many."""
        closed = 0
        for ended in self._open.pop(session_id, ()):
            if not ended.done():
                ended.set_result(reason)
                closed += 1
        self.health.websockets_closed += closed
        return closed

    def problem(self) -> str | None:
        """None while the watcher looks at the database as it should; else a short reason (the
        errors themselves, which may name hosts, are in the log and in `health`)."""
        last = self._last_look
        if last is None:
            return "has not looked at the database yet"
        if time.monotonic() - last > STALE_SECONDS:
            return f"no look at the database for {time.monotonic() - last:.0f} s"
        return None

    async def run(self) -> None:
        """Look every `interval` until cancelled; a failed look is logged and tried again."""
        since = utcnow() - self._overlap
        while True:
            started = utcnow()
            try:
                async with asyncio.timeout(LOOK_TIMEOUT_SECONDS):
                    await self.look(since)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed(exc)
            else:
                # The next look reaches back from the start of this one.
                since = started - self._overlap
            await asyncio.sleep(self._interval)

    async def look(self, since: datetime) -> int:
        """One look at the sessions ended at or after `since`; returns the WebSockets closed."""
        async with self._db.reader() as session:
            ended = await ended_since(session, since)
        closed = sum(self.end(session_id, end_message(reason)) for session_id, reason in ended)
        if self.health.last_error is not None:
            log.info("session watcher sees the database again")
        self.health.looks += 1
        self._last_look = time.monotonic()
        self.health.last_look_at = utcnow()
        self.health.last_error = None
        if closed:
            log.info("closed %d WebSocket(s) of ended sessions", closed)
        return closed

    def _failed(self, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        if isinstance(exc, TimeoutError):
            error = f"no answer within {LOOK_TIMEOUT_SECONDS:.0f} s"
        if self.health.last_error is None:
            log.warning("session watcher cannot read ended sessions (%s); retrying", error)
        self.health.failures += 1
        self.health.last_error = error
