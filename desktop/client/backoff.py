"""Jittered exponential backoff for reconnecting: it lives in `pulse_core.protocol.reconnect`."""

from __future__ import annotations

from pulse_core.protocol.reconnect import Backoff

__all__ = ["Backoff"]
