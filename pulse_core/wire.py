"""The WebSocket wire format: parsing client frames and building server frames.

Every frame is a JSON text object with a `type`. Event frames are built once, when the
event is recorded, and the same text is stored, relayed and sent to every subscriber.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pulse_core.names import ErrorCode, EventName
from pulse_core.topics import Topic, TopicError, parse_topic

MAX_CLIENT_FRAME_BYTES = 4096


class FrameError(ValueError):
    """A client frame that cannot be served; `code` is the `error` frame's code."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Subscribe:
    topic: Topic
    after: int | None
    type: Literal["subscribe"] = "subscribe"


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    topic: Topic
    type: Literal["unsubscribe"] = "unsubscribe"


@dataclass(frozen=True, slots=True)
class Ping:
    type: Literal["ping"] = "ping"


ClientFrame = Subscribe | Unsubscribe | Ping


def parse_client_frame(text: str) -> ClientFrame:
    """Parse one client frame, raising `FrameError` with a message a developer can act on."""
    if len(text) > MAX_CLIENT_FRAME_BYTES:
        raise FrameError(
            ErrorCode.TOO_LARGE,
            f"frame is {len(text)} bytes; the limit is {MAX_CLIENT_FRAME_BYTES}",
        )
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise FrameError(ErrorCode.BAD_REQUEST, f"frame is not valid JSON: {exc}") from None
    except RecursionError:
        raise FrameError(ErrorCode.BAD_REQUEST, "frame is nested too deeply") from None
    if not isinstance(data, dict):
        raise FrameError(ErrorCode.BAD_REQUEST, "frame must be a JSON object with a 'type'")
    kind = data.get("type")
    if kind == "ping":
        return Ping()
    if kind not in ("subscribe", "unsubscribe"):
        raise FrameError(
            ErrorCode.BAD_REQUEST,
            f"unknown frame type {kind!r}: use 'subscribe', 'unsubscribe' or 'ping'",
        )
    try:
        topic = parse_topic(data.get("topic"))
    except TopicError as exc:
        raise FrameError(ErrorCode.UNKNOWN_TOPIC, str(exc)) from None
    if kind == "unsubscribe":
        return Unsubscribe(topic=topic)
    after = data.get("after")
    if after is not None and (isinstance(after, bool) or not isinstance(after, int) or after < 0):
        raise FrameError(ErrorCode.BAD_REQUEST, "'after' must be null or a whole number >= 0")
    return Subscribe(topic=topic, after=after)


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def utc_now_iso(now: datetime | None = None) -> str:
    moment = now or datetime.now(UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_frame(
    *,
    topic: str,
    seq: int,
    event: EventName,
    campaign_id: int,
    ts: str,
    count: int | None = None,
    stats: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """The one serialization of an event on one topic."""
    frame: dict[str, Any] = {
        "type": "event",
        "topic": topic,
        "seq": seq,
        "event": event.value,
        "campaign_id": campaign_id,
    }
    if count is not None:
        frame["count"] = count
    frame["ts"] = ts
    if stats is not None:
        frame["stats"] = stats
    if extra:
        frame.update(extra)
    return dumps(frame)


def subscribed_frame(topic: str, seq: int) -> str:
    return dumps({"type": "subscribed", "topic": topic, "seq": seq})


def unsubscribed_frame(topic: str) -> str:
    return dumps({"type": "unsubscribed", "topic": topic})


def resync_frame(topic: str, seq: int) -> str:
    return dumps({"type": "resync", "topic": topic, "seq": seq})


def error_frame(code: ErrorCode, message: str, topic: str | None = None) -> str:
    frame: dict[str, Any] = {"type": "error", "code": code.value, "message": message}
    if topic is not None:
        frame["topic"] = topic
    return dumps(frame)


PONG_FRAME = dumps({"type": "pong"})
