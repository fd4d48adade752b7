"""`/api/ws` served by uvicorn's WebSocket protocol object itself: the normal path.

`native_protocol(app)` is a subclass of uvicorn's `WebSocketsSansIOProtocol` (websockets'
sans-I/O `ServerProtocol` under an `asyncio.Protocol`), given to uvicorn as its `ws` class. An
upgrade to `/api/ws` is accepted here and driven by a `NativeSession` without any ASGI task;
any other WebSocket path goes to the app, as before (which refuses it).

A connection at rest is that protocol object, websockets' `ServerProtocol`, the transport and a
`NativeSession`: no task. Expiry is a timer; the end of the session a future's callback. The
hub hands every subscriber the same WebSocket frame bytes, written straight into the
transport; one whose transport holds more than `PULSE_SEND_BUFFER_BYTES` unsent is a slow
consumer (4408). Short tasks run only the async work: the token's check, a subscribe's lookups
and replay (which waits while the transport is paused, as uvicorn's `send` does).

What it uses of uvicorn and websockets is listed in docs/operations.md ("WebSocket path") and
checked at start-up (`native_protocol` returns None when something is missing).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections import deque
from collections.abc import Coroutine
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote

import uvicorn
from starlette.types import ASGIApp
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.version import version as websockets_version

from pulse_core.logs import request_id as request_id_var
from server.access import REQUEST_ID_HEADER, access_log, request_id_of
from server.fanout import LatencySink, websocket_frame
from server.state import ServerState
from server.wssession import Session, bearer_token

log = logging.getLogger(__name__)

WS_PATH = "/api/ws"
SLOW_CLOSE_TIMEOUT_SECONDS = 2.0
# Close code 1007: a text frame that is not UTF-8.
INVALID_DATA = 1007

# What the native path calls or overrides on uvicorn's protocol and websockets' ServerProtocol.
UVICORN_METHODS = (
    "connection_made",
    "connection_lost",
    "data_received",
    "handle_connect",
    "handle_close",
    "handle_parser_exception",
    "send_receive_event_to_app",
    "keepalive_timeout",
    "shutdown",
    "start_keepalive",
    "stop_keepalive",
    "pause_writing",
    "resume_writing",
)
WEBSOCKETS_METHODS = ("accept", "send_response", "send_close", "data_to_send", "reject")


class NativeSession(Session):
    """A session written straight into its uvicorn WebSocket protocol's transport."""

    __slots__ = ("client", "inbox", "opened_at", "path", "protocol", "request_id", "task")

    def __init__(
        self,
        state: ServerState,
        protocol: PulseWebSocketProtocol,
        *,
        path: str,
        client: str,
        request_id: str,
    ) -> None:
        super().__init__(state)
        self.protocol = protocol
        self.task: asyncio.Task[None] | None = None
        self.inbox: deque[str | None] | None = None
        # For the access log's lines about it.
        self.path = path
        self.client = client
        self.request_id = request_id
        self.opened_at = time.perf_counter()

    # ---- writing -------------------------------------------------------------------------

    def offer(self, frame: str, wire: bytes) -> None:
        transport = self.protocol.transport
        if transport.get_write_buffer_size() > self.state.settings.send_buffer_bytes:
            self.mark_slow()
        else:
            transport.write(wire)

    def offer_many(self, frames: list[tuple[str, bytes]]) -> None:
        self.offer(frames[-1][0], b"".join([wire for _, wire in frames]))

    def send(self, text: str) -> None:
        if not self.closed:
            self.protocol.transport.write(websocket_frame(text))

    async def put(self, frame: str) -> None:
        protocol = self.protocol
        while protocol.write_paused and not self.closed:
            await protocol.drained()
        self.send(frame)

    def probe(self, frame: str, committed: float, sink: LatencySink) -> None:
        if not self.slow:  # written already, synchronously
            sink(time.time() - committed)

    def _close(self, code: int, reason: str, last: str | None) -> None:
        self.inbox = None
        task = self.task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        self.protocol.close_session(code, reason, last, slow=self.slow)

    # ---- reading -------------------------------------------------------------------------

    def received(self, text: str | None) -> None:
        """A client frame (None: binary); answered in order, one subscribe at a time."""
        if self.task is not None:
            if self.inbox is None:
                self.inbox = deque()
            self.inbox.append(text)
            self.protocol.pause_reads()
            return
        work = self.receive(text)
        if work is not None:
            self.run(work)

    def run(self, work: Coroutine[Any, Any, Any]) -> None:
        self.task = self.protocol.create_task(self._work(work))

    async def _work(self, work: Coroutine[Any, Any, Any]) -> None:
        try:
            await work
            while self.inbox and not self.closed:
                more = self.receive(self.inbox.popleft())
                if more is not None:
                    await more
        except asyncio.CancelledError:
            pass  # closed meanwhile
        except Exception as exc:  # the client is told and closed, not the server
            self.failed(exc)
        finally:
            self.task = None
            self.inbox = None
            if not self.closed:
                self.protocol.resume_reads()

    async def open(self, token: str) -> None:
        await self.start(token)


class PulseWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, serving `/api/ws` itself (see the module's docstring)."""

    pulse_app: ClassVar[Any] = None  # the FastAPI app, whose `state.pulse` is the server's
    forwarded: ClassVar[ProxyHeadersMiddleware | None] = None
    # Class defaults: a connection at rest pays for none of these in its own dict.
    session: NativeSession | None = None
    write_paused = False
    drain_waiter: asyncio.Future[None] | None = None

    # ---- the upgrade ---------------------------------------------------------------------

    def handle_connect(self, event: Request) -> None:
        raw_path, _, query = event.path.partition("?")
        state = getattr(self.pulse_app.state, "pulse", None)
        if self.root_path or unquote(raw_path) != WS_PATH or state is None:
            super().handle_connect(event)
            return
        self.request = event
        self.response = self.conn.accept(event)
        self.handshake_initiated = True
        self.handshake_complete = True
        if self.response.status_code != 101:
            self.close_sent = True
            self.conn.send_response(self.response)
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.transport.close()
            return
        headers = event.headers
        client = self._client_text(headers)
        request_id = request_id_of(
            {"headers": [(REQUEST_ID_HEADER, headers.get("X-Request-ID", "").encode("latin-1"))]}
        )
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info('%s - "WebSocket %s" [accepted]', client, event.path)
        access_log.info(
            "WebSocket %s connecting %s",
            raw_path,
            client,
            extra={"path": raw_path, "client": client, "request_id": request_id},
        )
        response = self.response
        del response.headers["Date"]
        response.headers.update(
            (name.decode("latin-1").lower(), value.decode("latin-1"))
            for name, value in self.default_headers
        )
        self.conn.send_response(response)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.start_keepalive()
        access_token = None
        for name, value in parse_qsl(query, keep_blank_values=True):
            if name == "access_token":
                access_token = value
        token = bearer_token(headers.get("Authorization", ""), access_token)
        # What a connection at rest need not keep: the handshake's headers (websockets' parser
        # keeps the request), and the ASGI receive queue and writable event, unused here.
        headers.clear()
        del self.request, self.response, self.queue, self.writable
        self.session = session = NativeSession(
            state, self, path=raw_path, client=client, request_id=request_id
        )
        session.run(session.open(token))

    def _client_text(self, headers: Any) -> str:
        """The client's address, from `X-Forwarded-For` when the peer is a trusted proxy."""
        client = self.client
        if self.forwarded is not None and client is not None:
            scope: dict[str, Any] = {
                "type": "websocket",
                "client": client,
                "scheme": self.scheme,
                "headers": [
                    (name.lower().encode("latin-1"), value.encode("latin-1"))
                    for name, value in headers.raw_items()
                    if name.lower() in ("x-forwarded-for", "x-forwarded-proto")
                ],
            }
            call = self.forwarded(scope, _nothing, _nothing)  # type: ignore[arg-type]
            try:
                call.send(None)
            except StopIteration:
                client = scope["client"]
            else:  # pragma: no cover - the middleware never waits before calling its app
                call.close()
        return f"{client[0]}:{client[1]}" if client else "-"

    def create_task(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """A task whose log lines carry the connection's request id."""
        context = contextvars.copy_context()
        context.run(request_id_var.set, self.session.request_id if self.session else None)
        task = self.loop.create_task(work, context=context)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # ---- reading -------------------------------------------------------------------------

    def send_receive_event_to_app(self) -> None:
        session = self.session
        if session is None:
            super().send_receive_event_to_app()
            return
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        if self.close_sent or session.closed:
            return
        if self.curr_msg_data_type == "text":
            try:
                text: str | None = data.decode()
            except UnicodeDecodeError:
                self.conn.send_close(INVALID_DATA)
                self.handle_parser_exception()
                return
        else:
            text = None
        session.received(text)

    def pause_reads(self) -> None:
        if not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    def resume_reads(self) -> None:
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()

    # ---- flow control --------------------------------------------------------------------

    def pause_writing(self) -> None:
        if self.session is None:
            super().pause_writing()
        else:
            self.write_paused = True

    def resume_writing(self) -> None:
        if self.session is None:
            super().resume_writing()
            return
        self.write_paused = False
        self._wake_writers()

    def drained(self) -> asyncio.Future[None]:
        """Done once the transport takes writes again (or the connection is lost)."""
        if self.drain_waiter is None:
            self.drain_waiter = self.loop.create_future()
        return self.drain_waiter

    def _wake_writers(self) -> None:
        waiter, self.drain_waiter = self.drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ---- closing -------------------------------------------------------------------------

    def close_session(self, code: int, reason: str, last: str | None, *, slow: bool) -> None:
        """Send `last` and a close frame; the transport is closed when the client answers, or
        dropped after a while (2 s for a slow consumer) if it does not."""
        if self.close_sent or self.transport.is_closing() or self.conn.state is not State.OPEN:
            return
        if last is not None:
            self.transport.write(websocket_frame(last))
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.resume_reads()
        delay = SLOW_CLOSE_TIMEOUT_SECONDS if slow else self.close_timeout
        self.close_timer = self.loop.call_later(delay, self._close_timed_out)

    def _close_timed_out(self) -> None:
        self.close_timer = None
        if self.transport.get_write_buffer_size():
            self.transport.abort()  # it reads nothing: its unsent frames are dropped
        else:
            self.transport.close()

    def _detach(self) -> None:
        """The connection is closing: its session leaves the hub, and its work stops."""
        session = self.session
        if session is not None:
            session.detach()
            if session.task is not None and session.task is not asyncio.current_task():
                session.task.cancel()

    def handle_close(self, event: Frame) -> None:
        if self.session is None:
            super().handle_close(event)
            return
        self._detach()
        if self.close_sent:
            if self.close_timer is not None:
                self.close_timer.cancel()
                self.close_timer = None
            self.transport.close()
        elif not self.transport.is_closing():
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.transport.close()

    def handle_parser_exception(self) -> None:
        if self.session is None:
            super().handle_parser_exception()
            return
        self._detach()
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.transport.close()

    def keepalive_timeout(self) -> None:
        self._detach()
        super().keepalive_timeout()

    def shutdown(self) -> None:
        if self.session is None:
            super().shutdown()
            return
        self._detach()
        self.stop_keepalive()
        if not self.close_sent:
            self.conn.send_close(1012)  # service restart
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        session = self.session
        if session is None:
            super().connection_lost(exc)
            return
        self._detach()
        self.stop_keepalive()
        self.connections.discard(self)
        self.handshake_complete = True
        self.disconnected = True
        self.write_paused = False
        self._wake_writers()
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None
        if exc is None:
            self.transport.close()
        received = self.conn.close_rcvd
        code = None if received is None else received.code
        seconds = time.perf_counter() - session.opened_at
        said = "" if code is None else f" (client sent close code {code})"
        access_log.info(
            "WebSocket %s closed after %.1f s%s %s",
            session.path,
            seconds,
            said,
            session.client,
            extra={
                "path": session.path,
                "duration_ms": round(seconds * 1000, 3),
                "client": session.client,
                "code": code,
                "request_id": session.request_id,
            },
        )


async def _nothing(*_: Any) -> None:
    """The app behind the proxy-headers middleware when only its view of the client is wanted."""


def missing_internals() -> list[str]:
    """What the native path uses of uvicorn and websockets and cannot find in them."""
    missing = [
        f"uvicorn WebSocketsSansIOProtocol.{name}"
        for name in UVICORN_METHODS
        if not callable(getattr(WebSocketsSansIOProtocol, name, None))
    ]
    missing += [
        f"websockets ServerProtocol.{name}"
        for name in WEBSOCKETS_METHODS
        if not callable(getattr(ServerProtocol, name, None))
    ]
    return missing


def native_protocol(
    app: ASGIApp, *, forwarded_allow_ips: str | None
) -> type[PulseWebSocketProtocol] | None:
    """uvicorn's `ws` class serving `/api/ws` of `app` natively, or None (with a WARNING) when
    this uvicorn or websockets lacks what it uses: then the ASGI endpoint serves it."""
    missing = missing_internals()
    if missing:
        log.warning(
            "uvicorn %s / websockets %s lack what the fast WebSocket path uses (%s): serving "
            "/api/ws through ASGI instead",
            uvicorn.__version__,
            websockets_version,
            ", ".join(missing),
        )
        return None
    forwarded = (
        ProxyHeadersMiddleware(_nothing, trusted_hosts=forwarded_allow_ips)
        if forwarded_allow_ips is not None
        else None
    )
    return type(
        "PulseWebSocketProtocol",
        (PulseWebSocketProtocol,),
        {"pulse_app": app, "forwarded": forwarded},
    )
