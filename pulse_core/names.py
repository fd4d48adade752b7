"""Every name that crosses a process boundary: topics, events, Redis keys, job names."""

from __future__ import annotations

from enum import IntEnum, StrEnum

CAMPAIGN_TOPIC_PREFIX = "campaign:"
MARKETER_TOPIC_PREFIX = "marketer:"
MARKETER_TOPIC_SUFFIX = ":campaigns"


class EventName(StrEnum):
    """The three events of the original design, kept as they were."""

    CAMPAIGN_UPDATED = "campaign_updated"
    TARGET_POPULATED = "target_populated"
    OFFERS_CREATED = "offers_created"


class UpdateReason(StrEnum):
    """Why a `campaign_updated` event was sent (an optional field of the event frame)."""

    LAUNCHED = "launched"
    TARGET_STATUS = "target_status"
    OFFERS_REFRESHED = "offers_refreshed"
    OFFERS_ACTIVATED = "offers_activated"
    AD_ACTIVITY = "ad_activity"
    CREATED = "created"
    EDITED = "edited"
    PAUSED = "paused"
    RESUMED = "resumed"
    ARCHIVED = "archived"
    DEPOSIT = "deposit"


class ActorKind(StrEnum):
    """Who did something recorded in the audit trail."""

    USER = "user"
    API_KEY = "api_key"
    SYSTEM = "system"


class AuditAction(StrEnum):
    """The actions of the audit trail (interfaces.md, `GET /api/audit`)."""

    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGOUT = "logout"
    LAUNCH = "launch"
    REFRESH_OFFERS = "refresh_offers"
    CAMPAIGN_CREATED = "campaign_created"
    CAMPAIGN_EDITED = "campaign_edited"
    PAUSED = "paused"
    RESUMED = "resumed"
    ARCHIVED = "archived"
    DEPOSIT = "deposit"
    TARGET_CREATED = "target_created"
    USER_CREATED = "user_created"
    USER_CHANGED = "user_changed"
    PASSWORD_CHANGED = "password_changed"
    API_KEY_CREATED = "api_key_created"
    API_KEY_REVOKED = "api_key_revoked"
    MARKETER_CREATED = "marketer_created"
    MEMBERS_IMPORTED = "members_imported"
    NOTIFICATIONS_CHANGED = "notifications_changed"


class SessionEnd(StrEnum):
    """Why a login session ended before it expired (the reason a client is shown)."""

    LOGOUT = "logout"
    PASSWORD_CHANGED = "password_changed"
    DISABLED = "disabled"


class ErrorCode(StrEnum):
    """Codes of the WebSocket `error` frame."""

    BAD_REQUEST = "bad_request"
    FORBIDDEN = "forbidden"
    UNKNOWN_TOPIC = "unknown_topic"
    TOO_LARGE = "too_large"
    SLOW_CONSUMER = "slow_consumer"


# Redis pub/sub channel on which workers announce committed events to every server.
EVENTS_CHANNEL = "pulse:events"

# arq queue and job names.
QUEUE_NAME = "pulse:queue"
JOB_POPULATE_TARGET = "populate_target"
JOB_CREATE_OFFERS = "create_initial_pending_offers"
JOB_ACTIVATE_OFFERS = "activate_pending_offers"
JOB_DEMO_TRAFFIC = "demo_traffic"
JOB_RELAY_EVENTS = "relay_unpublished_events"
JOB_PRUNE_EVENTS = "prune_event_log"
JOB_PRUNE_AUDIT = "prune_audit_trail"
JOB_SEND_MAIL = "send_notifications"


def population_job_id(target_id: int, previous: str) -> str:
    """The arq job id of one population of a target: the one asked for after `previous` ended."""
    return f"{JOB_POPULATE_TARGET}:{target_id}:{previous}"


class FrameType(StrEnum):
    """The `type` of a WebSocket frame, both directions (docs/protocol.md, Frames)."""

    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    PING = "ping"
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    EVENT = "event"
    RESYNC = "resync"
    ERROR = "error"
    PONG = "pong"


class CloseCode(IntEnum):
    """WebSocket close codes the server sends (4000-4999 is the application range)."""

    GOING_AWAY = 1001
    INTERNAL_ERROR = 1011
    UNAUTHORIZED = 4401
    SLOW_CONSUMER = 4408


CLOSE_UNAUTHORIZED = CloseCode.UNAUTHORIZED
CLOSE_SLOW_CONSUMER = CloseCode.SLOW_CONSUMER
CLOSE_GOING_AWAY = CloseCode.GOING_AWAY
