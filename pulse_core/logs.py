"""One logging setup for the server, the workers and the command line.

`setup_logging` sends every logger (uvicorn's and arq's too) through one handler on stderr, as
text (time, level, logger, message) or one JSON object per line. A request id set with
`request_context` appears in every line logged while it is set; login tokens never do.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import IO, Any, Literal

LogFormat = Literal["text", "json"]

request_id: ContextVar[str | None] = ContextVar("pulse_request_id", default=None)

# Loggers that may have handlers of their own (uvicorn configures some): they go through ours.
ROUTED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "arq")
# Chatty at "info" about nothing an operator needs; shown with PULSE_LOG_LEVEL=debug.
QUIET_LOGGERS = ("alembic", "httpx", "httpcore")
# Fields a log call may add with `extra=`; JSON lines carry them as their own keys.
EXTRA_FIELDS = ("method", "path", "route", "status", "duration_ms", "client", "code")

_TOKEN_IN_QUERY = re.compile(r"(access_token=)[^&\s\"']*", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with the value of every `access_token=` replaced by `[redacted]`."""
    return _TOKEN_IN_QUERY.sub(r"\1[redacted]", text)


class RedactTokens(logging.Filter):
    """Replaces the value of every `access_token=` in a log record with `[redacted]`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


class RequestIdFilter(logging.Filter):
    """Puts the current request id (or None) on each record as `request_id`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.get()
        return True


@contextmanager
def request_context(value: str | None) -> Iterator[None]:
    """Every line logged inside carries `value` as its request id."""
    token = request_id.set(value)
    try:
        yield
    finally:
        request_id.reset(token)


def _utc_time(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


class TextFormatter(logging.Formatter):
    """`2025-01-31T12:00:00.123Z INFO server.access [request id] message`, then any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        head = f"{_utc_time(record.created)} {record.levelname} {record.name}"
        line = f"{head} [{rid}] {record.getMessage()}" if rid else f"{head} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, exc_info, extras."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": _utc_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            data["request_id"] = rid
        for name in EXTRA_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                data[name] = value
        if record.exc_info:
            data["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exc_info"] = record.exc_text
        if record.stack_info:
            data["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class _PulseHandler(logging.StreamHandler[IO[str]]):
    """The handler `setup_logging` installs (and replaces when called again)."""


def setup_logging(
    level: str, log_format: LogFormat = "text", *, stream: IO[str] | None = None
) -> logging.Handler:
    """Send every log line to `stream` (stderr) in `log_format` from `level` up; returns the
    handler. Calling it again replaces the previous setup."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _PulseHandler)]:
        root.removeHandler(old)
        old.close()
    handler = _PulseHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactTokens())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root.addHandler(handler)
    numeric = logging.getLevelName(level.upper())
    root.setLevel(numeric)
    for name in ROUTED_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(
            logging.NOTSET if numeric <= logging.DEBUG else logging.WARNING
        )
    logging.captureWarnings(True)
    return handler
