"""Every WebSocket frame of `/api/ws`, both directions: typed, parsed and built only here.

Every frame is a JSON text object with a `type` (`pulse_core.names.FrameType`). Event frames
are built once, when the event is recorded (`event_frame`), and the same text is stored,
relayed and sent to every subscriber.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeGuard, TypeVar

from pulse_core.names import ErrorCode, EventName, FrameType
from pulse_core.topics import Topic, TopicError, parse_topic

MAX_CLIENT_FRAME_BYTES = 4096
_T = TypeVar("_T")

# An `error` frame with one of these codes also means: that topic is not subscribed.
_TOPIC_REFUSALS = frozenset({ErrorCode.FORBIDDEN, ErrorCode.UNKNOWN_TOPIC})
_ERROR_CODES = frozenset(code.value for code in ErrorCode)


class FrameError(ValueError):
    """A frame that cannot be used; `code` is the `error` frame's code for a client frame."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# ---- client → server --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Start receiving `topic`; with `after`, first replay what came after that seq."""

    TYPE: ClassVar[FrameType] = FrameType.SUBSCRIBE
    topic: Topic
    after: int | None = None

    def to_wire(self) -> dict[str, Any]:
        return {"type": self.TYPE.value, "topic": self.topic.name, "after": self.after}


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    TYPE: ClassVar[FrameType] = FrameType.UNSUBSCRIBE
    topic: Topic

    def to_wire(self) -> dict[str, Any]:
        return {"type": self.TYPE.value, "topic": self.topic.name}


@dataclass(frozen=True, slots=True)
class Ping:
    TYPE: ClassVar[FrameType] = FrameType.PING

    def to_wire(self) -> dict[str, Any]:
        return {"type": self.TYPE.value}


ClientFrame = Subscribe | Unsubscribe | Ping


# ---- server → client --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subscribed:
    """The subscription is in place; `seq` is the topic's latest seq (0 when it has none)."""

    TYPE: ClassVar[FrameType] = FrameType.SUBSCRIBED
    topic: str
    seq: int

    def to_wire(self) -> dict[str, Any]:
        return {"type": self.TYPE.value, "topic": self.topic, "seq": self.seq}


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    TYPE: ClassVar[FrameType] = FrameType.UNSUBSCRIBED
    topic: str

    def to_wire(self) -> dict[str, Any]:
        return {"type": self.TYPE.value, "topic": self.topic}


@dataclass(frozen=True, slots=True)
class Resync:
    """The events after the client's `after` are gone: reload; live events go on after `seq`."""

    TYPE: ClassVar[FrameType] = FrameType.RESYNC
    topic: str
    seq: int

    def to_wire(self) -> dict[str, Any]:
        return {"type": self.TYPE.value, "topic": self.topic, "seq": self.seq}


@dataclass(frozen=True, slots=True)
class Error:
    """A client frame could not be served. `code` stays a plain string when this client does
    not know it (a newer server)."""

    TYPE: ClassVar[FrameType] = FrameType.ERROR
    code: ErrorCode | str
    message: str
    topic: str | None = None

    @property
    def ends_subscription(self) -> bool:
        """True when the server refused the topic itself: the client must stop holding it."""
        return self.topic is not None and self.code in _TOPIC_REFUSALS

    def to_wire(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": self.TYPE.value, "code": str(self.code)}
        frame["message"] = self.message
        if self.topic is not None:
            frame["topic"] = self.topic
        return frame


@dataclass(frozen=True, slots=True)
class Pong:
    TYPE: ClassVar[FrameType] = FrameType.PONG

    def to_wire(self) -> dict[str, Any]:
        return {"type": self.TYPE.value}


@dataclass(frozen=True, slots=True)
class Event:
    """One event on one topic (also one item of `GET /api/events`)."""

    TYPE: ClassVar[FrameType] = FrameType.EVENT
    topic: str
    seq: int
    event: str  # an `EventName`, or a name this client does not know yet
    campaign_id: int
    ts: str = ""
    count: int | None = None
    stats: Mapping[str, Any] | None = None
    reason: str | None = None
    actor: Mapping[str, Any] | None = None
    population_status: str | None = None
    created: int | None = None
    request_id: str | None = None

    def to_wire(self) -> dict[str, Any]:
        optional = {
            "reason": self.reason,
            "actor": dict(self.actor) if self.actor is not None else None,
            "population_status": self.population_status,
            "created": self.created,
            "request_id": self.request_id,
        }
        return _event_wire(
            topic=self.topic,
            seq=self.seq,
            event=self.event,
            campaign_id=self.campaign_id,
            ts=self.ts,
            count=self.count,
            stats=dict(self.stats) if self.stats is not None else None,
            extra={key: value for key, value in optional.items() if value is not None},
        )


ServerFrame = Subscribed | Unsubscribed | Event | Resync | Error | Pong
Frame = ClientFrame | ServerFrame


# ---- building -----------------------------------------------------------------------------


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def encode(frame: Frame) -> str:
    """The text of one frame, either direction."""
    return dumps(frame.to_wire())


PONG_TEXT = encode(Pong())
# How the text of every event frame begins (`event_frame` puts `type` first): a reader that
# only counts events can tell one from the other frames without decoding it.
EVENT_FRAME_PREFIX = dumps({"type": FrameType.EVENT.value})[:-1]


def utc_now_iso(now: datetime | None = None) -> str:
    moment = now or datetime.now(UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_frame(
    *,
    topic: str,
    seq: int,
    event: EventName | str,
    campaign_id: int,
    ts: str,
    count: int | None = None,
    stats: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """The one serialization of an event on one topic (its `ts` comes before any other `ts`
    key: the hub reads the commit time there)."""
    return dumps(
        _event_wire(
            topic=topic,
            seq=seq,
            event=event,
            campaign_id=campaign_id,
            ts=ts,
            count=count,
            stats=stats,
            extra=extra,
        )
    )


def _event_wire(
    *,
    topic: str,
    seq: int,
    event: EventName | str,
    campaign_id: int,
    ts: str,
    count: int | None,
    stats: dict[str, Any] | None,
    extra: dict[str, Any] | None,
) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": FrameType.EVENT.value,
        "topic": topic,
        "seq": seq,
        "event": str(event),
        "campaign_id": campaign_id,
    }
    if count is not None:
        frame["count"] = count
    frame["ts"] = ts
    if stats is not None:
        frame["stats"] = stats
    if extra:
        frame.update(extra)
    return frame


# ---- parsing ------------------------------------------------------------------------------


def _object(text: str | bytes) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise FrameError(ErrorCode.BAD_REQUEST, f"frame is not valid JSON: {exc}") from None
    except RecursionError:
        raise FrameError(ErrorCode.BAD_REQUEST, "frame is nested too deeply") from None
    if not isinstance(data, dict):
        raise FrameError(ErrorCode.BAD_REQUEST, "frame must be a JSON object with a 'type'")
    return data


def _frame_type(data: Mapping[str, Any], allowed: tuple[FrameType, ...]) -> FrameType:
    kind = data.get("type")
    if isinstance(kind, str) and kind in allowed:
        return FrameType(kind)
    names = ", ".join(repr(str(t)) for t in allowed)
    raise FrameError(ErrorCode.BAD_REQUEST, f"unknown frame type {kind!r}: use one of {names}")


_CLIENT_TYPES = (FrameType.SUBSCRIBE, FrameType.UNSUBSCRIBE, FrameType.PING)
_SERVER_TYPES = (
    FrameType.SUBSCRIBED,
    FrameType.UNSUBSCRIBED,
    FrameType.EVENT,
    FrameType.RESYNC,
    FrameType.ERROR,
    FrameType.PONG,
)


def parse_client_frame(text: str) -> ClientFrame:
    """Parse one client frame, raising `FrameError` with a message a developer can act on."""
    if len(text) > MAX_CLIENT_FRAME_BYTES:
        raise FrameError(
            ErrorCode.TOO_LARGE,
            f"frame is {len(text)} bytes; the limit is {MAX_CLIENT_FRAME_BYTES}",
        )
    data = _object(text)
    kind = _frame_type(data, _CLIENT_TYPES)
    if kind is FrameType.PING:
        return Ping()
    try:
        topic = parse_topic(data.get("topic"))
    except TopicError as exc:
        raise FrameError(ErrorCode.UNKNOWN_TOPIC, str(exc)) from None
    if kind is FrameType.UNSUBSCRIBE:
        return Unsubscribe(topic=topic)
    after = data.get("after")
    if after is not None and not (_is_int(after) and after >= 0):
        raise FrameError(ErrorCode.BAD_REQUEST, "'after' must be null or a whole number >= 0")
    return Subscribe(topic=topic, after=after)


def parse_server_frame(text: str | bytes) -> ServerFrame:
    """Parse one server frame; `FrameError` for anything a client cannot use (log and ignore
    it: a newer server may send frames this client does not know)."""
    data = _object(text)
    kind = _frame_type(data, _SERVER_TYPES)
    if kind is FrameType.EVENT:
        return parse_event(data)
    if kind is FrameType.PONG:
        return Pong()
    if kind is FrameType.ERROR:
        code = _required(data, "code", str)
        return Error(
            code=ErrorCode(code) if code in _ERROR_CODES else code,
            message=_optional(data, "message", str) or "",
            topic=_optional(data, "topic", str),
        )
    topic = _required(data, "topic", str)
    if kind is FrameType.UNSUBSCRIBED:
        return Unsubscribed(topic)
    seq = _seq(data, "seq")
    return Subscribed(topic, seq) if kind is FrameType.SUBSCRIBED else Resync(topic, seq)


def parse_event(data: Mapping[str, Any]) -> Event:
    """An event frame already decoded from JSON (a WebSocket frame or a `GET /api/events` item)."""
    if data.get("type", FrameType.EVENT) != FrameType.EVENT:
        raise FrameError(ErrorCode.BAD_REQUEST, f"not an event frame: type {data.get('type')!r}")
    return Event(
        topic=_required(data, "topic", str),
        seq=_seq(data, "seq"),
        event=_required(data, "event", str),
        campaign_id=_seq(data, "campaign_id"),
        ts=_optional(data, "ts", str) or "",
        count=_optional_int(data, "count"),
        stats=_optional(data, "stats", dict),
        reason=_optional(data, "reason", str),
        actor=_optional(data, "actor", dict),
        population_status=_optional(data, "population_status", str),
        created=_optional_int(data, "created"),
        request_id=_optional(data, "request_id", str),
    )


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _required(data: Mapping[str, Any], key: str, kind: type[_T]) -> _T:
    value = data.get(key)
    if not isinstance(value, kind):
        raise FrameError(ErrorCode.BAD_REQUEST, f"{key!r} must be a {kind.__name__}")
    return value


def _optional(data: Mapping[str, Any], key: str, kind: type[_T]) -> _T | None:
    value = data.get(key)
    return value if isinstance(value, kind) else None


def _seq(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if not _is_int(value) or value < 0:
        raise FrameError(ErrorCode.BAD_REQUEST, f"{key!r} must be a whole number >= 0")
    return value


def _optional_int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if _is_int(value) else None
