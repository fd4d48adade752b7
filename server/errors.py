"""Error answers that never echo unbounded input, and a JSON answer for the unexpected.

A 422 names each bad field (`loc`, `msg`, `type`) without its input; any text taken from the
request is cut short and made encodable (a lone surrogate such as `\\ud800` becomes `\\\\ud800`).
"""

from __future__ import annotations

import logging
import math
import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 300
# `input` echoes what was sent (any size); `url` points at pydantic's docs, not ours.
HIDDEN_ERROR_KEYS = frozenset({"input", "url"})


def safe(value: Any) -> Any:
    """`value` as JSON can always encode it: short text, finite numbers, plain containers."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        text = value[:MAX_TEXT_CHARS].encode("utf-8", "backslashreplace").decode("utf-8")
        if len(text) < len(value) or len(text) > MAX_TEXT_CHARS:
            text = text[: MAX_TEXT_CHARS - 1] + "…"
        return text
    if isinstance(value, dict):
        return {str(safe(str(k))): safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [safe(item) for item in value]
    return safe(str(value))


def validation_detail(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Each error's `loc`, `msg`, `type` (and `ctx`), without the input."""
    return [
        {key: safe(value) for key, value in error.items() if key not in HIDDEN_ERROR_KEYS}
        for error in exc.errors()
    ]


async def validation_failed(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": validation_detail(exc)}, status_code=422)


async def http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's answer, with a detail that may quote the request made safe first."""
    assert isinstance(exc, HTTPException)
    detail = safe(exc.detail)
    if detail != exc.detail:
        exc = HTTPException(exc.status_code, detail, exc.headers)
    return await http_exception_handler(request, exc)


class UnexpectedErrors:
    """Pure ASGI: an exception no handler took is logged with a reference and answered 503.

    The answer is JSON `{"detail": ...}` naming the reference to look for in the log, instead
    of a bare "Internal Server Error". A response already started cannot be replaced: then the
    exception goes on to the server, which closes the connection.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            if started:
                raise
            reference = secrets.token_hex(4)
            log.exception(
                "unexpected error on %s %s (reference %s)",
                scope.get("method"),
                scope.get("path"),
                reference,
            )
            response = JSONResponse(
                {
                    "detail": f"the server could not answer this request (reference "
                    f"{reference}); try again later, and tell the operator if it persists"
                },
                status_code=503,
                headers={"Retry-After": "5"},
            )
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Answer validation and HTTP errors safely, and every unexpected error with JSON."""
    app.add_exception_handler(RequestValidationError, validation_failed)
    app.add_exception_handler(HTTPException, http_error)
    app.add_middleware(UnexpectedErrors)
