"""The WebSocket protocol of `/api/ws`, both directions, without I/O (docs/protocol.md).

- `frames`: typed frames, parsed and built (`parse_client_frame`, `parse_server_frame`,
  `encode`, `event_frame`);
- `cursor`: a per-topic `TopicCursor` that says deliver, duplicate or gap(first, last);
- `reconnect`: a client's `ReconnectPolicy`: retry after a jittered delay, log in again, or
  give up.

The hub, the desktop's live client, the test clients and the benchmarks are adapters that move
text over sockets and ask this package what it means.
"""

from __future__ import annotations

from pulse_core.names import CloseCode, ErrorCode, FrameType
from pulse_core.protocol.cursor import (
    DELIVER,
    DUPLICATE,
    Deliver,
    Duplicate,
    Gap,
    Step,
    TopicCursor,
)
from pulse_core.protocol.frames import (
    EVENT_FRAME_PREFIX,
    MAX_CLIENT_FRAME_BYTES,
    PONG_TEXT,
    ClientFrame,
    Error,
    Event,
    FrameError,
    Ping,
    Pong,
    Resync,
    ServerFrame,
    Subscribe,
    Subscribed,
    Unsubscribe,
    Unsubscribed,
    encode,
    event_frame,
    parse_client_frame,
    parse_event,
    parse_server_frame,
    utc_now_iso,
)
from pulse_core.protocol.reconnect import (
    Backoff,
    BadAddress,
    Closed,
    Decision,
    Ending,
    GiveUp,
    Reauthenticate,
    ReconnectPolicy,
    Refused,
    Retry,
    Unreachable,
)

__all__ = [
    "DELIVER",
    "DUPLICATE",
    "EVENT_FRAME_PREFIX",
    "MAX_CLIENT_FRAME_BYTES",
    "PONG_TEXT",
    "Backoff",
    "BadAddress",
    "ClientFrame",
    "CloseCode",
    "Closed",
    "Decision",
    "Deliver",
    "Duplicate",
    "Ending",
    "Error",
    "ErrorCode",
    "Event",
    "FrameError",
    "FrameType",
    "Gap",
    "GiveUp",
    "Ping",
    "Pong",
    "Reauthenticate",
    "ReconnectPolicy",
    "Refused",
    "Resync",
    "Retry",
    "ServerFrame",
    "Step",
    "Subscribe",
    "Subscribed",
    "TopicCursor",
    "Unreachable",
    "Unsubscribe",
    "Unsubscribed",
    "encode",
    "event_frame",
    "parse_client_frame",
    "parse_event",
    "parse_server_frame",
    "utc_now_iso",
]
