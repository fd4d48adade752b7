"""Passwords in the system keyring, when there is one; never in a plain file."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)
SERVICE = "campaign-pulse"


def _keyring() -> Any:
    try:
        import keyring
        from keyring.backends import fail, null
    except ImportError:
        return None
    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring | null.Keyring):
        return None
    return keyring


def available() -> bool:
    """True when a real keyring backend can keep secrets."""
    return _keyring() is not None


def _account(server_url: str, email: str) -> str:
    return f"{email} @ {server_url}"


def load_password(server_url: str, email: str) -> str | None:
    store = _keyring()
    if store is None or not email:
        return None
    try:
        password = store.get_password(SERVICE, _account(server_url, email))
        return str(password) if password is not None else None
    except Exception as exc:  # a locked or broken keyring must not block signing in
        log.info("keyring read failed: %s", exc)
        return None


def save_password(server_url: str, email: str, password: str) -> bool:
    store = _keyring()
    if store is None:
        return False
    try:
        store.set_password(SERVICE, _account(server_url, email), password)
        return True
    except Exception as exc:
        log.info("keyring write failed: %s", exc)
        return False


def forget_password(server_url: str, email: str) -> None:
    store = _keyring()
    if store is None:
        return
    try:
        store.delete_password(SERVICE, _account(server_url, email))
    except Exception as exc:
        log.debug("keyring delete: %s", exc)
