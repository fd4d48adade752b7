"""The desktop app's log: a rotating file in the platform's log folder, and stderr.

Uncaught exceptions (of the main thread and of any other) land there too; tokens and
passwords never do (`redact`). `PULSE_LOG_LEVEL` sets the level (default: info in the file,
warnings on stderr).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from logging.handlers import RotatingFileHandler
from pathlib import Path
from types import TracebackType
from typing import Any

APP_DIR_NAME = "campaign-pulse"
LOG_FILE_NAME = "desktop.log"
MAX_BYTES = 1_000_000
BACKUPS = 5
FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s]: %(message)s"
QUIET_LOGGERS = ("httpx", "httpcore", "websockets")  # chatty below warning

_SECRETS = (
    # Authorization: Bearer <token>
    (re.compile(r"(\bBearer\s+)[^\s'\",;]+", re.IGNORECASE), r"\1[redacted]"),
    # token=..., access_token=..., password=... (query strings, reprs, log arguments)
    (
        re.compile(r"\b((?:access_|refresh_)?token|password)(\s*[=:]\s*)[^\s&'\",;]+", re.I),
        r"\1\2[redacted]",
    ),
    # "access_token": "...", 'password': '...' (JSON and dict reprs)
    (
        re.compile(r"""(["'](?:\w*token|password)["']\s*:\s*)(["'])[^"']*\2""", re.I),
        r"\1\2[redacted]\2",
    ),
    # any JSON Web Token, wherever it appears
    (re.compile(r"\beyJ[\w-]+\.[\w-]+\.[\w-]*"), "[redacted]"),
)


def redact(text: str) -> str:
    """`text` without the tokens and passwords it may hold."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then removes secrets from the whole line, traceback included."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _DesktopHandler:
    """Marks the handlers `setup_logging` installed, so that a second call replaces them."""


class _FileHandler(_DesktopHandler, RotatingFileHandler):
    pass


class _StderrHandler(_DesktopHandler, logging.StreamHandler):  # type: ignore[type-arg]
    pass


def log_dir() -> Path:
    """The platform's log folder for the app (e.g. ~/.local/state/campaign-pulse/log)."""
    from platformdirs import user_log_dir

    return Path(user_log_dir(APP_DIR_NAME, appauthor=False))


def log_file() -> Path:
    """The file the running app logs to (where it would, before `setup_logging`)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, _FileHandler):
            return Path(handler.baseFilename)
    return log_dir() / LOG_FILE_NAME


def setup_logging(directory: Path | None = None, level: str | None = None) -> Path:
    """Log to a rotating file in `directory` (the platform's log folder) and to stderr, and
    log uncaught exceptions; returns the file's path. A second call replaces the first."""
    teardown_logging()
    chosen = (level or os.environ.get("PULSE_LOG_LEVEL") or "").upper()
    numeric = logging.getLevelName(chosen) if chosen else logging.INFO
    if not isinstance(numeric, int):
        numeric = logging.INFO
    formatter = RedactingFormatter(FORMAT)
    root = logging.getLogger()
    if not any(getattr(h, "stream", None) is sys.stderr for h in root.handlers):
        stderr = _StderrHandler(sys.stderr)  # unless the command line already logs there
        stderr.setLevel(numeric if chosen else logging.WARNING)
        stderr.setFormatter(formatter)
        root.addHandler(stderr)
    path = (directory or log_dir()) / LOG_FILE_NAME
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        file = _FileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")
    except OSError as exc:  # a read-only home: the app still runs, logging to stderr
        logging.getLogger(__name__).warning("cannot write the log file %s: %s", path, exc)
    else:
        file.setFormatter(formatter)
        root.addHandler(file)
    _previous.update(
        level=root.level,
        hooks=(sys.excepthook, threading.excepthook),
        quiet={name: logging.getLogger(name).level for name in QUIET_LOGGERS},
    )
    root.setLevel(numeric)
    for name in QUIET_LOGGERS:
        quiet = logging.NOTSET if numeric <= logging.DEBUG else logging.WARNING
        logging.getLogger(name).setLevel(quiet)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    return path


def teardown_logging() -> None:
    """Remove what `setup_logging` installed (handlers, hooks, root level)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _DesktopHandler)]:
        root.removeHandler(handler)
        handler.close()
    if "hooks" in _previous:
        sys.excepthook, threading.excepthook = _previous.pop("hooks")
    if "level" in _previous:
        root.setLevel(_previous.pop("level"))
    for name, level in _previous.pop("quiet", {}).items():
        logging.getLogger(name).setLevel(level)


_previous: dict[str, Any] = {}  # what setup_logging replaced, for teardown_logging


def _log_uncaught(
    kind: type[BaseException], error: BaseException, traceback: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, traceback)
        return
    logging.getLogger("desktop").critical("uncaught exception", exc_info=(kind, error, traceback))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or issubclass(args.exc_type, SystemExit):
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("desktop").critical(
        "uncaught exception in thread %s",
        name,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )
