"""What one server process holds while it runs: database, Redis, job queue, fan-out hub."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from arq.connections import ArqRedis
from redis.asyncio import Redis

from pulse_core.config import Settings
from pulse_data.database import Database
from pulse_data.pubsub import EventPublisher
from server.fanout import Hub
from server.listener import RedisListener
from server.ratelimit import LoginLimiter
from server.session_watch import SessionWatcher
from server.topic_access import TopicAccess
from server.wssession import Expiries


@dataclass
class ServerState:
    settings: Settings
    secret_key: str
    db: Database
    redis: Redis
    jobs: ArqRedis
    publisher: EventPublisher
    hub: Hub
    listener: RedisListener
    listener_task: asyncio.Task[None]
    login_limiter: LoginLimiter
    topic_access: TopicAccess
    session_watch: SessionWatcher
    session_watch_task: asyncio.Task[None]
    # When each open WebSocket's session expires (server.wssession).
    expiries: Expiries = field(default_factory=Expiries)
