"""The data directory of `pulse up`: its lock and the secret key kept in it."""

from __future__ import annotations

import fcntl
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SECRET_FILE = "secret_key"
LOCK_FILE = "pulse-up.lock"


class DataDirError(RuntimeError):
    """The data directory cannot be used; the message says what to do."""


def prepare_data_dir(path: Path) -> Path:
    """Create the directory (private to the user) and return its absolute path."""
    path = path.expanduser().resolve()
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirError(
            f"cannot create the data directory {path}: {exc.strerror}. "
            "Choose another one with --data-dir or PULSE_DATA_DIR."
        ) from exc
    return path


@contextmanager
def locked_data_dir(path: Path) -> Iterator[None]:
    """Hold an exclusive lock so that two `pulse up` never share one data directory."""
    with open(path / LOCK_FILE, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise DataDirError(
                f"another `pulse up` is already running with the data directory {path}. "
                "Stop it first, or start this one with --data-dir <another folder>."
            ) from exc
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def load_or_create_secret(path: Path) -> str:
    """The secret key kept in `<path>/secret_key` (mode 0600), generated on first use."""
    secret_path = path / SECRET_FILE
    try:
        fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(secret_path)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48) + "\n")
    return _read_secret(secret_path)


def _read_secret(secret_path: Path) -> str:
    if secret_path.stat().st_mode & 0o077:
        secret_path.chmod(0o600)
    secret = secret_path.read_text().strip()
    if not secret:
        raise DataDirError(
            f"the secret key file {secret_path} is empty. Delete it and start again "
            "(a new key is generated; everyone logs in again)."
        )
    return secret
