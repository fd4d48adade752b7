"""The event frame builder under its first name; everything else is in `pulse_core.protocol`."""

from __future__ import annotations

from pulse_core.protocol.frames import (
    MAX_CLIENT_FRAME_BYTES,
    FrameError,
    dumps,
    event_frame,
    parse_client_frame,
    utc_now_iso,
)

__all__ = [
    "MAX_CLIENT_FRAME_BYTES",
    "FrameError",
    "dumps",
    "event_frame",
    "parse_client_frame",
    "utc_now_iso",
]
