"""The server's Redis listener: announced events in, fan-out out; reconnects by itself.

After every (re)subscription it re-reads from the event log whatever was committed while it
was away, so a Redis outage delays events but loses none. `/readyz` reports its state.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass

from redis.asyncio import Redis

from pulse_core.names import EVENTS_CHANNEL
from pulse_data.pubsub import decode_announcement
from server.fanout import Hub

log = logging.getLogger(__name__)

BACKOFF_START_SECONDS = 0.1
BACKOFF_MAX_SECONDS = 5.0
# Announcements already received are delivered together, at most this many at once (the hub
# then writes each subscriber its frames of all of them at once).
ANNOUNCEMENTS_AT_ONCE = 128
# A long delivery (a topic of thousands under a stream of events) is followed by a short wait
# for more announcements, so that one write to each subscriber carries several events instead
# of one: LINGER_SHARE of the last delivery's time, once it took LINGER_AFTER_SECONDS or more,
# and never over LINGER_MAX_SECONDS. Small topics are never held back.
LINGER_AFTER_SECONDS = 0.02
LINGER_SHARE = 0.05
LINGER_MAX_SECONDS = 0.01


@dataclass(slots=True)
class ListenerHealth:
    connected: bool = False
    reconnects: int = 0
    messages: int = 0
    bad_messages: int = 0
    last_error: str | None = None
    last_message_at: float | None = None
    last_delivery_seconds: float = 0.0  # how long the hub took over the last announcements


class RedisListener:
    def __init__(self, redis_url: str, hub: Hub) -> None:
        self.redis_url = redis_url
        self.hub = hub
        self.health = ListenerHealth()
        self.subscribed = asyncio.Event()
        self.linger_max_seconds = LINGER_MAX_SECONDS

    def linger_seconds(self) -> float:
        """How long to wait for more announcements after the first, given the last delivery."""
        last = self.health.last_delivery_seconds
        if last < LINGER_AFTER_SECONDS:
            return 0.0
        return min(last * LINGER_SHARE, self.linger_max_seconds)

    async def run(self) -> None:
        """Listen until cancelled, reconnecting with jittered exponential backoff."""
        backoff = BACKOFF_START_SECONDS
        while True:
            try:
                await self._listen_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.health.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("event listener lost Redis (%s); retrying", self.health.last_error)
            self.health.connected = False
            self.subscribed.clear()
            await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
            backoff = min(backoff * 2, BACKOFF_MAX_SECONDS)
            self.health.reconnects += 1

    async def _listen_once(self) -> None:
        client = Redis.from_url(self.redis_url, health_check_interval=5, socket_connect_timeout=5)
        try:
            async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.subscribe(EVENTS_CHANNEL)
                caught_up = await self.hub.catch_up()
                if self.health.reconnects:
                    log.info("event listener back on Redis; %d missed events delivered", caught_up)
                self.health.connected = True
                self.health.last_error = None
                self.subscribed.set()
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    received = [message]
                    # What has arrived already (redis-py: timeout 0 does not wait), and what
                    # arrives while lingering after a long delivery.
                    until = time.monotonic() + self.linger_seconds()
                    while len(received) < ANNOUNCEMENTS_AT_ONCE:
                        wait = max(until - time.monotonic(), 0.0)
                        message = await pubsub.get_message(timeout=wait)
                        if message is None:
                            break
                        received.append(message)
                    await self._handle([m["data"] for m in received if m.get("type") == "message"])
        finally:
            await client.aclose()

    async def _handle(self, announcements: list[bytes | str]) -> None:
        events: list[tuple[str, int, str]] = []
        for data in announcements:
            self.health.messages += 1
            self.health.last_message_at = time.time()
            try:
                events.extend(decode_announcement(data))
            except ValueError as exc:
                self.health.bad_messages += 1
                log.warning("ignored a malformed announcement on %s: %s", EVENTS_CHANNEL, exc)
        if events:
            started = time.monotonic()
            await self.hub.deliver(events)
            self.health.last_delivery_seconds = time.monotonic() - started
        # Let the fallback path's writers drain their queues before the next announcements.
        await asyncio.sleep(0)
