"""Request ids, the access log and HTTP request metrics, as one pure ASGI middleware.

Each HTTP request gets an id (a sane `X-Request-ID` sent with it, else a new one), sent back in
the response's `X-Request-ID` and carried by every log line logged while it is handled. One
access line per request: method, path (never the query, where a token may be), status,
duration, client. WebSockets log their opening and closing; their frames pass untouched.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pulse_core.logs import request_context
from pulse_core.logs import request_id as request_id_var
from server.metrics import ServerMetrics

access_log = logging.getLogger("server.access")

REQUEST_ID_HEADER = b"x-request-id"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
UNMATCHED_ROUTE = "<unmatched>"


def request_id_of(scope: Scope) -> str:
    """The client's `X-Request-ID` when it is 1-64 of [A-Za-z0-9._-], else a new uuid4 hex."""
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER:
            text: str = value.decode("latin-1")
            if _SANE_REQUEST_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


def route_of(scope: Scope) -> str:
    """The matched route's template (`/api/campaigns/{campaign_id}`), never the raw path."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE


def _path(scope: Scope) -> str:
    raw = scope.get("raw_path")
    # Still percent-encoded: a newline sent as %0A cannot forge a log line.
    return raw.decode("latin-1") if isinstance(raw, bytes) else str(scope.get("path", ""))


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "-"


class AccessLog:
    def __init__(self, app: ASGIApp, metrics: ServerMetrics | None) -> None:
        self.app = app
        self.metrics = metrics

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Returns the coroutine to await rather than awaiting it: one frame less held by each
        # open WebSocket.
        if scope["type"] == "http":
            return self._http(scope, receive, send)
        if scope["type"] == "websocket":
            return self._websocket(scope, receive, send)
        return self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = request_id_of(scope)
        header = (REQUEST_ID_HEADER, request_id.encode())
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        started = time.perf_counter()
        with request_context(request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                seconds = time.perf_counter() - started
                method, route = scope["method"], route_of(scope)
                if self.metrics is not None:
                    self.metrics.observe_request(method, route, status, seconds)
                if access_log.isEnabledFor(logging.INFO):
                    path, client = _path(scope), _client(scope)
                    access_log.info(
                        "%s %s %d %.1f ms %s",
                        method,
                        path,
                        status,
                        seconds * 1000,
                        client,
                        extra={
                            "method": method,
                            "path": path,
                            "route": route,
                            "status": status,
                            "duration_ms": round(seconds * 1000, 3),
                            "client": client,
                        },
                    )

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Logs the connection and its end; `send` is not wrapped, so frames cost nothing more."""
        request_id = request_id_of(scope)
        close_code: int | None = None

        async def receive_watched() -> Message:
            nonlocal close_code
            message = await receive()
            if message["type"] == "websocket.connect":
                access_log.info(
                    "WebSocket %s connecting %s",
                    _path(scope),
                    _client(scope),
                    extra={"path": _path(scope), "client": _client(scope)},
                )
            elif message["type"] == "websocket.disconnect":
                close_code = message.get("code")
            return message

        started = time.perf_counter()
        context = request_id_var.set(request_id)
        try:
            await self.app(scope, receive_watched, send)
        finally:
            seconds = time.perf_counter() - started
            code = "" if close_code is None else f" (client sent close code {close_code})"
            access_log.info(
                "WebSocket %s closed after %.1f s%s %s",
                _path(scope),
                seconds,
                code,
                _client(scope),
                extra={
                    "path": _path(scope),
                    "duration_ms": round(seconds * 1000, 3),
                    "client": _client(scope),
                    "code": close_code,
                },
            )
            request_id_var.reset(context)
