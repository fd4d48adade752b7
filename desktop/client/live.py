"""The WebSocket half of the client: subscriptions that survive reconnects, in order, no gaps.

One `LiveClient` holds one connection at a time and one subscription per topic, however many
views ask for it. It is an adapter around `pulse_core.protocol`: frames are parsed and built
there, a `TopicCursor` per topic says deliver, duplicate or gap, and the `ReconnectPolicy`
decides after each connection: retry with jittered exponential backoff (every topic subscribed
again with `after` = the last `seq` it saw, so the server replays what was missed), log in again
(close code 4401 or a refused upgrade: the loop waits for a new token), or give up.
A gap is filled from the event history, or, when that is gone, reported as a resync so that the
owner reloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from desktop.client import network
from desktop.client.models import EventFrame
from pulse_core.protocol import (
    DELIVER,
    DUPLICATE,
    Backoff,
    BadAddress,
    ClientFrame,
    CloseCode,
    Closed,
    Ending,
    Error,
    Event,
    FrameError,
    Gap,
    GiveUp,
    Ping,
    Reauthenticate,
    ReconnectPolicy,
    Refused,
    Resync,
    Retry,
    Subscribe,
    Subscribed,
    TopicCursor,
    Unreachable,
    Unsubscribe,
    encode,
    parse_server_frame,
)
from pulse_core.topics import parse_topic

log = logging.getLogger(__name__)

HistoryFetcher = Callable[[str, int], Awaitable[list[EventFrame]]]
PING_TEXT = encode(Ping())


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
        self.policy = ReconnectPolicy(backoff or Backoff())
        self.keepalive_seconds = keepalive_seconds
        self.open_timeout = open_timeout
        self.connect_options = network.websocket_options(self.url)  # proxy and certificates
        self._token = token
        self._topics: dict[str, int] = {}  # topic -> number of holders
        self._cursors: dict[str, TopicCursor] = {}  # topic -> the last seq applied, if known
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
        cursor = self._cursors.get(topic)
        return cursor.seq if cursor is not None else None

    async def subscribe(self, topic: str, after: int | None = None) -> None:
        """Hold `topic`; the first holder sends the one `subscribe` frame. `after`: the seq
        already seen (of a grid kept on disk), so that the server replays what came since."""
        if topic not in self._topics:
            self._cursors[topic] = TopicCursor(after)
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
        self._cursors.pop(topic, None)
        await self._send(Unsubscribe(parse_topic(topic)))

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
            ending = await self._connect_and_serve()
            if self._closed:
                break
            decision = self.policy.decide(ending, lasted=time.monotonic() - started)
            if isinstance(decision, Reauthenticate):
                self._token_event.clear()
                self.auth_reason = decision.reason
                self._status(LinkState.OFFLINE, reason="Signed out: your session expired.")
                self.listener.on_token_expired()
            elif isinstance(decision, GiveUp):
                self._status(LinkState.OFFLINE, reason=decision.reason)
                return
            else:
                await self._wait_to_retry(decision)
        self._status(LinkState.OFFLINE, reason="closed")

    async def _wait_to_retry(self, retry: Retry) -> None:
        log.info("live connection to %s lost: %s", self.url, retry.reason)
        self._status(
            LinkState.RECONNECTING,
            retry_in=retry.delay,
            failures=retry.attempt,
            reason=retry.reason,
        )
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), retry.delay)

    async def _connect_and_serve(self) -> Ending:
        """Serve one connection; how it ended (the one place that knows the transport's
        exceptions)."""
        try:
            await self._serve()
        except InvalidStatus as exc:
            return Refused(exc.response.status_code)
        except ConnectionClosed as exc:
            if exc.rcvd is not None and exc.rcvd.code == CloseCode.SLOW_CONSUMER:
                log.warning("server dropped this client as too slow; resuming")
            return Closed(exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else Closed(None)
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            return Unreachable(_describe(exc))
        except InvalidURI as exc:
            return BadAddress(str(exc))
        except Exception:  # a bug here must not kill live updates for good
            log.exception("live connection failed unexpectedly; reconnecting")
            return Unreachable("unexpected error (see the log)")
        return Closed(None)

    async def _serve(self) -> None:
        headers = {"Authorization": f"Bearer {self._token}"}
        ws = await connect(
            self.url,
            additional_headers=headers,
            **self.connect_options,
            open_timeout=self.open_timeout,
            ping_interval=20,
            ping_timeout=20,
            max_size=2**22,
        )
        self._ws = ws
        keepalive = asyncio.create_task(self._keepalive(ws))
        try:
            self._status(LinkState.CONNECTED)
            for topic in list(self._topics):
                await self._send_subscribe(topic)
            while True:
                await self._handle(await ws.recv())
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
                await ws.send(PING_TEXT)

    # ---- frames -------------------------------------------------------------------------

    async def _send(self, frame: ClientFrame) -> None:
        ws = self._ws
        if ws is None:
            return  # sent on the next connect
        with contextlib.suppress(ConnectionClosed):
            await ws.send(encode(frame))

    async def _send_subscribe(self, topic: str) -> None:
        await self._send(Subscribe(parse_topic(topic), self.last_seq(topic)))

    async def _handle(self, text: str | bytes) -> None:
        try:
            frame = parse_server_frame(text)
        except FrameError as exc:
            log.warning("ignoring a frame this client cannot use (%s): %.200r", exc, text)
            return
        if isinstance(frame, Event):
            await self._on_event(frame)
        elif isinstance(frame, Subscribed) and frame.topic in self._topics:
            cursor = self._cursors[frame.topic]
            resumed = cursor.seq is not None
            if not resumed:
                cursor.reset(frame.seq)
            self.listener.on_subscribed(frame.topic, frame.seq, resumed)
        elif isinstance(frame, Resync) and frame.topic in self._topics:
            self._cursors[frame.topic].reset(frame.seq)
            self.listener.on_resync(frame.topic)
        elif isinstance(frame, Error):
            log.warning("server error frame %s: %s", frame.code, frame.message)
            if frame.ends_subscription and frame.topic in self._topics:
                self._topics.pop(frame.topic, None)
                self._cursors.pop(frame.topic, None)
            self.listener.on_server_error(str(frame.code), frame.message, frame.topic)

    async def _on_event(self, event: Event) -> None:
        cursor = self._cursors.get(event.topic)
        if cursor is None:
            return  # a late frame of a topic we just left
        step = cursor.check(event.seq)
        if step is DUPLICATE:
            return  # already seen
        if isinstance(step, Gap) and not await self._fill_gap(event.topic, cursor, step):
            self.listener.on_resync(event.topic)  # the gap is gone: reload, then go on
        cursor.advance(event.seq)
        self.listener.on_event(EventFrame.from_event(event))

    async def _fill_gap(self, topic: str, cursor: TopicCursor, gap: Gap) -> bool:
        """Deliver the stored events of `gap`; False when they are gone."""
        if self.fetch_history is None:
            return False
        log.info("gap on %s: missing %d to %d; filling from history", topic, gap.first, gap.last)
        after = gap.after
        while after < gap.last:
            try:
                page = await self.fetch_history(topic, after)
            except Exception as exc:
                log.warning("could not fill the gap on %s: %s", topic, exc)
                return False
            missing = [f for f in page if after < f.seq <= gap.last]
            if not missing:
                return False
            for frame in missing:
                if cursor.check(frame.seq) is not DELIVER:
                    return False
                cursor.advance(frame.seq)
                after = frame.seq
                self.listener.on_event(frame)
        return True

    def _status(self, state: LinkState, **kwargs: Any) -> None:
        self.listener.on_status(LinkStatus(state, **kwargs))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "server refused the connection"
    if isinstance(exc, TimeoutError):
        return "server did not answer in time"
    return str(exc) or type(exc).__name__
