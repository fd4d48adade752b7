"""The WebSocket half of the client: subscriptions that survive reconnects, in order, no gaps.

One `LiveClient` holds one connection at a time and one subscription per topic, however many
views ask for it. It reconnects with jittered exponential backoff; on reconnect every topic is
subscribed again with `after` = the last `seq` it saw, so the server replays what was missed.
A `seq` that skips ahead is filled from the event history, or, when that is gone, reported as
a resync so that the owner reloads. Close code 4401 (or a refused upgrade) stops the loop until
a new token is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from desktop.client import network
from desktop.client.backoff import Backoff
from desktop.client.models import EventFrame
from pulse_core.names import CLOSE_SLOW_CONSUMER, CLOSE_UNAUTHORIZED

log = logging.getLogger(__name__)

HistoryFetcher = Callable[[str, int], Awaitable[list[EventFrame]]]
STABLE_CONNECTION_SECONDS = 10.0


class LinkState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class LinkStatus:
    """Where the connection is; `retry_in` is set while waiting to reconnect."""

    state: LinkState
    retry_in: float | None = None
    failures: int = 0
    reason: str = ""


class LiveListener(Protocol):
    def on_status(self, status: LinkStatus) -> None: ...
    def on_subscribed(self, topic: str, seq: int, resumed: bool) -> None: ...
    def on_event(self, frame: EventFrame) -> None: ...
    def on_resync(self, topic: str) -> None: ...
    def on_token_expired(self) -> None: ...
    def on_server_error(self, code: str, message: str, topic: str | None) -> None: ...


class _AuthRejected(Exception):
    pass


def websocket_url(server_url: str) -> str:
    """`http://host:port` → `ws://host:port/api/ws` (https → wss)."""
    if server_url.startswith("https://"):
        return "wss://" + server_url[len("https://") :] + "/api/ws"
    return "ws://" + server_url.split("://", 1)[-1] + "/api/ws"


class LiveClient:
    """A self-healing WebSocket subscription to any number of topics."""

    def __init__(
        self,
        server_url: str,
        token: str,
        listener: LiveListener,
        *,
        fetch_history: HistoryFetcher | None = None,
        backoff: Backoff | None = None,
        keepalive_seconds: float = 15.0,
        open_timeout: float = 10.0,
    ) -> None:
        self.url = websocket_url(server_url)
        self.listener = listener
        self.fetch_history = fetch_history
        self.backoff = backoff or Backoff()
        self.keepalive_seconds = keepalive_seconds
        self.open_timeout = open_timeout
        self.connect_options = network.websocket_options(self.url)  # proxy and certificates
        self._token = token
        self._topics: dict[str, int] = {}  # topic -> number of holders
        self._last_seq: dict[str, int] = {}
        self._ws: ClientConnection | None = None
        self._closed = False
        self.auth_reason = ""  # why the server last refused the token (the 4401 reason)
        self._token_event = asyncio.Event()
        self._token_event.set()
        self._wake = asyncio.Event()

    # ---- what the owner calls ------------------------------------------------------------

    @property
    def topics(self) -> list[str]:
        return list(self._topics)

    def last_seq(self, topic: str) -> int | None:
        return self._last_seq.get(topic)

    async def subscribe(self, topic: str, after: int | None = None) -> None:
        """Hold `topic`; the first holder sends the one `subscribe` frame. `after`: the seq
        already seen (of a grid kept on disk), so that the server replays what came since."""
        if after is not None and topic not in self._topics:
            self._last_seq.setdefault(topic, after)
        self._topics[topic] = self._topics.get(topic, 0) + 1
        if self._topics[topic] == 1:
            await self._send_subscribe(topic)

    async def unsubscribe(self, topic: str) -> None:
        """Release `topic`; the last holder sends `unsubscribe` and forgets its seq."""
        holders = self._topics.get(topic, 0) - 1
        if holders > 0:
            self._topics[topic] = holders
            return
        self._topics.pop(topic, None)
        self._last_seq.pop(topic, None)
        await self._send({"type": "unsubscribe", "topic": topic})

    def set_token(self, token: str) -> None:
        """A fresh token after signing in again: reconnect now."""
        self._token = token
        self._token_event.set()
        self._wake.set()

    def reconnect_now(self) -> None:
        """Skip the rest of the backoff delay."""
        self._wake.set()

    async def close(self) -> None:
        self._closed = True
        self._token_event.set()
        self._wake.set()
        if self._ws is not None:
            await self._ws.close()

    # ---- the connection loop ------------------------------------------------------------

    async def run(self) -> None:
        """Connect, serve, and reconnect until `close()`; returns only then."""
        while not self._closed:
            await self._token_event.wait()
            if self._closed:
                break
            self._status(LinkState.CONNECTING)
            started = time.monotonic()
            reason = ""
            try:
                await self._connect_and_serve()
            except _AuthRejected as exc:
                self._token_event.clear()
                self.auth_reason = str(exc)
                self._status(LinkState.OFFLINE, reason="Signed out: your session expired.")
                self.listener.on_token_expired()
                continue
            except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed) as exc:
                reason = _describe(exc)
                log.info("live connection to %s lost: %s", self.url, reason)
            except InvalidURI as exc:
                self._status(LinkState.OFFLINE, reason=f"Bad server address: {exc}")
                return
            except Exception:  # a bug here must not kill live updates for good
                log.exception("live connection failed unexpectedly; reconnecting")
                reason = "unexpected error (see the log)"
            if self._closed:
                break
            if time.monotonic() - started > STABLE_CONNECTION_SECONDS:
                self.backoff.reset()
            delay = self.backoff.next_delay()
            self._status(
                LinkState.RECONNECTING,
                retry_in=delay,
                failures=self.backoff.attempts,
                reason=reason,
            )
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
        self._status(LinkState.OFFLINE, reason="closed")

    async def _connect_and_serve(self) -> None:
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            ws = await connect(
                self.url,
                additional_headers=headers,
                **self.connect_options,
                open_timeout=self.open_timeout,
                ping_interval=20,
                ping_timeout=20,
                max_size=2**22,
            )
        except InvalidStatus as exc:
            if exc.response.status_code in (401, 403):
                raise _AuthRejected from exc
            raise
        self._ws = ws
        keepalive = asyncio.create_task(self._keepalive(ws))
        try:
            self._status(LinkState.CONNECTED)
            for topic in list(self._topics):
                await self._send_subscribe(topic)
            while True:
                try:
                    text = await ws.recv()
                except ConnectionClosed as exc:
                    if ws.close_code == CLOSE_UNAUTHORIZED:
                        raise _AuthRejected(ws.close_reason or "") from exc
                    if ws.close_code == CLOSE_SLOW_CONSUMER:
                        log.warning("server dropped this client as too slow; resuming")
                    raise
                await self._handle(text)
        finally:
            self._ws = None
            keepalive.cancel()
            with contextlib.suppress(BaseException):
                await keepalive
            await ws.close()

    async def _keepalive(self, ws: ClientConnection) -> None:
        """An application-level ping; the library's protocol pings detect dead links."""
        while True:
            await asyncio.sleep(self.keepalive_seconds)
            with contextlib.suppress(ConnectionClosed):
                await ws.send('{"type":"ping"}')

    # ---- frames -------------------------------------------------------------------------

    async def _send(self, frame: dict[str, Any]) -> None:
        ws = self._ws
        if ws is None:
            return  # sent on the next connect
        with contextlib.suppress(ConnectionClosed):
            await ws.send(json.dumps(frame))

    async def _send_subscribe(self, topic: str) -> None:
        await self._send({"type": "subscribe", "topic": topic, "after": self._last_seq.get(topic)})

    async def _handle(self, text: str | bytes) -> None:
        try:
            frame = json.loads(text)
            kind = frame["type"]
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a frame that is not a JSON object with a type: %.200r", text)
            return
        topic = frame.get("topic")
        if kind == "event":
            await self._on_event(frame)
        elif kind == "subscribed" and topic in self._topics:
            resumed = topic in self._last_seq
            if not resumed:
                self._last_seq[topic] = int(frame.get("seq") or 0)
            self.listener.on_subscribed(topic, int(frame.get("seq") or 0), resumed)
        elif kind == "resync" and topic in self._topics:
            self._last_seq[topic] = int(frame.get("seq") or 0)
            self.listener.on_resync(topic)
        elif kind == "error":
            code, message = str(frame.get("code")), str(frame.get("message"))
            log.warning("server error frame %s: %s", code, message)
            if topic in self._topics and code in ("forbidden", "unknown_topic"):
                self._topics.pop(topic, None)
                self._last_seq.pop(topic, None)
            self.listener.on_server_error(code, message, topic)

    async def _on_event(self, data: dict[str, Any]) -> None:
        try:
            frame = EventFrame.from_wire(data)
        except (KeyError, TypeError, ValueError):
            log.warning("ignoring a malformed event frame: %.200r", data)
            return
        if frame.topic not in self._topics:
            return  # a late frame of a topic we just left
        last = self._last_seq.get(frame.topic)
        if last is not None and frame.seq <= last:
            return  # already seen
        if (
            last is not None
            and frame.seq > last + 1
            and not await self._fill_gap(frame.topic, last, frame.seq)
        ):
            self.listener.on_resync(frame.topic)  # the gap is gone: reload, then go on
        self._last_seq[frame.topic] = frame.seq
        self.listener.on_event(frame)

    async def _fill_gap(self, topic: str, last: int, upto: int) -> bool:
        """Deliver the stored events between `last` and `upto`; False when they are gone."""
        if self.fetch_history is None:
            return False
        log.info("gap on %s: have %d, got %d; filling from history", topic, last, upto)
        cursor = last
        while cursor < upto - 1:
            try:
                page = await self.fetch_history(topic, cursor)
            except Exception as exc:
                log.warning("could not fill the gap on %s: %s", topic, exc)
                return False
            missing = [f for f in page if cursor < f.seq < upto]
            if not missing or missing[0].seq != cursor + 1:
                return False
            for frame in missing:
                if frame.seq != cursor + 1:
                    return False
                cursor = frame.seq
                self._last_seq[topic] = cursor
                self.listener.on_event(frame)
        return True

    def _status(self, state: LinkState, **kwargs: Any) -> None:
        self.listener.on_status(LinkStatus(state, **kwargs))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionClosed):
        code = exc.rcvd.code if exc.rcvd else None
        return f"connection closed (code {code})" if code else "connection lost"
    if isinstance(exc, ConnectionRefusedError):
        return "server refused the connection"
    if isinstance(exc, TimeoutError):
        return "server did not answer in time"
    return str(exc) or type(exc).__name__
