"""`pulse events tail [--topic TOPIC]`: every event as the servers receive it, one line each.

It listens on the deployment's Redis channel (PULSE_REDIS_URL, or the embedded Redis of a
`pulse up` running in the data directory) until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

from pulse_cli import console
from pulse_cli.admin_db import CommandError
from pulse_core.config import Settings
from pulse_core.names import EVENTS_CHANNEL
from pulse_core.topics import TopicError, parse_topic
from pulse_data.pubsub import decode_announcement

CONNECT_TIMEOUT_SECONDS = 5.0
RECONNECT_SECONDS = 1.0


class RedisUnavailable(RuntimeError):
    """Neither PULSE_REDIS_URL nor a running `pulse up` gives a Redis that answers."""


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `pulse events tail` to `pulse`."""
    events = commands.add_parser("events", parents=[common], help="the live events")
    event_commands = events.add_subparsers(title="commands", metavar="COMMAND", required=True)
    tail = event_commands.add_parser(
        "tail",
        parents=[common],
        help="print every event as it is published, one line each, until Ctrl-C",
        description="Print every event as it is published, one line each, until Ctrl-C. Uses "
        "PULSE_REDIS_URL, or the embedded Redis of a `pulse up` running in the data directory.",
    )
    tail.add_argument(
        "--topic",
        metavar="TOPIC",
        help="only this topic: campaign:<id> or marketer:<id>:campaigns",
    )
    tail.set_defaults(command=_tail)


def _tail(args: argparse.Namespace) -> int:
    topic = _topic(args.topic)
    settings = Settings(**_overrides(args), demo=True)  # reads nothing secret
    url = settings.redis_url or _embedded_redis_url(settings.data_dir)
    client = redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        where = "PULSE_REDIS_URL" if settings.redis_url else "the embedded Redis of `pulse up`"
        raise RedisUnavailable(f"Redis at {url} ({where}) is not answering: {exc}") from None
    try:
        for line in _lines(client, topic):
            print(line, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
    return 0


def _topic(name: str | None) -> str | None:
    if name is None:
        return None
    try:
        return parse_topic(name).name
    except TopicError as exc:
        raise CommandError(f"--topic: {exc}") from None


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(args, k) for k in ("data_dir",) if hasattr(args, k)}


def _embedded_redis_url(data_dir: Path) -> str:
    """The unix socket that `pulse up` gives its embedded Redis in `data_dir`."""
    data_dir = data_dir.expanduser().resolve()
    socket_path = data_dir / "redis" / "redis.sock"
    if not socket_path.exists():
        raise RedisUnavailable(
            f"PULSE_REDIS_URL is not set and no `pulse up` is running in {data_dir} (no "
            f"{socket_path}): set PULSE_REDIS_URL, or --data-dir to that of a running `pulse up`"
        )
    return f"unix://{socket_path}"


def _lines(client: redis.Redis, topic: str | None) -> Iterator[str]:
    """One line per event published, for ever; a lost Redis is reconnected to with a note."""
    first, lost = True, False
    while True:
        pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe(EVENTS_CHANNEL)
            pubsub.get_message(timeout=CONNECT_TIMEOUT_SECONDS)  # the subscription is made
            if first:
                console.info(f"listening for events{_on(topic)}; Ctrl-C stops")
            elif lost:
                console.info("back on Redis")
            first = lost = False
            for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                try:
                    announced = decode_announcement(message["data"])
                except ValueError as exc:
                    console.warn(f"ignored a malformed announcement: {exc}")
                    continue
                for event_topic, seq, frame in announced:
                    if topic is None or event_topic == topic:
                        yield describe(event_topic, seq, frame)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            if not lost:
                console.warn(f"lost Redis ({exc}); reconnecting: events until then are not shown")
                lost = True
            time.sleep(RECONNECT_SECONDS)
        finally:
            pubsub.close()


def _on(topic: str | None) -> str:
    return "" if topic is None else f" on {topic}"


def describe(topic: str, seq: int, frame: str) -> str:
    """`<time>  <topic>  seq <n>  <event>  campaign <id>` and `count`, `reason`, `by` if given."""
    try:
        event: dict[str, Any] = json.loads(frame)
    except ValueError:
        event = {}
    parts = [
        str(event.get("ts", "-")),
        topic,
        f"seq {seq}",
        str(event.get("event", "?")),
        f"campaign {event.get('campaign_id', '?')}",
    ]
    if "count" in event:
        parts.append(f"count {event['count']}")
    if event.get("reason"):
        parts.append(f"reason {event['reason']}")
    actor = event.get("actor")
    if isinstance(actor, dict) and actor.get("name"):
        parts.append(f"by {actor['name']}")
    return "  ".join(parts)
