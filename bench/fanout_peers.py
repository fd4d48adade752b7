"""The comparison servers of the fan-out benchmark, measured in the same run as the product's
server, with the same clients, frames and load (issue 10's goal is a ratio to each):

- **floor**: the `websockets` library's own asyncio server and `websockets.broadcast()`,
  per-message-deflate off, and a guard for slow readers: before each broadcast, drop any
  connection whose transport write buffer holds more than 4 MB. One event's frame is encoded
  once and written straight into every subscriber's transport, with no task or await per
  subscriber: about the least a Python server can do per frame.
- **socketio**: python-socketio (`AsyncServer`, ASGI under uvicorn, as a Python user would
  pick it), a room per topic, each event emitted to its room.

Both subscribe to the same Redis channel (`EVENTS_CHANNEL`) and read the same announcements as
`pulse server` (`pulse_data.pubsub.decode_announcement`), keep the latest seq of each topic, and
answer a subscription with the product's `subscribed` frame (built with `pulse_core.protocol`),
so the same client code drives all three. They skip authentication (the product's server checks
each subscriber's token once, when it connects and subscribes, not per frame).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.fanout_server import ChildServer, child_config, child_setup
from bench.processes import HOST
from pulse_core.names import EVENTS_CHANNEL, FrameType
from pulse_core.protocol import (
    PONG_TEXT,
    Error,
    ErrorCode,
    FrameError,
    Subscribe,
    Subscribed,
    Unsubscribe,
    Unsubscribed,
    encode,
    parse_client_frame,
)
from pulse_core.topics import TopicError, parse_topic

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine

    from bench.fanout_setup import Deployment

PEERS = ("floor", "socketio")
PEER_CHILD_CODE = "import bench.fanout_peers as b; b.peer_server_child()"
WRITE_BUFFER_LIMIT = 4 * 1024 * 1024  # floor: a subscriber that holds more is dropped
# python-socketio delivers ~6k frames/s at 10,000 subscribers (1-2k on a busy machine): fewer
# frames in flight keep the drain after a flood to a few seconds, and fewer events keep its
# paced phase (which it cannot keep up with) under ~20 s.
SOCKETIO_INFLIGHT_FRAMES = 10_000
SOCKETIO_PACED_FRAMES = 30_000


class PeerServer(ChildServer):
    """A comparison server (`floor` or `socketio`) in a child process, like `PulseServer`."""

    def __init__(
        self,
        name: str,
        deployment: Deployment,
        port: int,
        n: int,
        log_path: Path,
        gc_threshold: tuple[int, int, int],
    ) -> None:
        if name not in PEERS:
            raise ValueError(f"no comparison server {name!r}; there are {', '.join(PEERS)}")
        config = child_config(
            deployment,
            n,
            log_path,
            server=name,
            port=port,
            redis_url=deployment.redis_url,
            gc_threshold=gc_threshold,
        )
        self.name = name
        if name == "socketio":
            self.flood_inflight_frames = SOCKETIO_INFLIGHT_FRAMES
            self.paced_max_frames = SOCKETIO_PACED_FRAMES
        super().__init__(PEER_CHILD_CODE, config, port, log_path)


def peer_server_child() -> None:
    """Entry point of a comparison server's subprocess."""
    config = child_setup()
    gc.set_threshold(*config["gc_threshold"])  # what `pulse server` sets: only the path differs
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    serve = _floor if config["server"] == "floor" else _socketio
    import uvloop

    uvloop.run(serve(config["port"], config["redis_url"]))


async def _announcements(
    redis_url: str, ready: asyncio.Event
) -> AsyncIterator[tuple[str, int, str]]:
    """Every (topic, seq, frame) published on `EVENTS_CHANNEL`, in order, each seq once."""
    from redis.asyncio import Redis

    from pulse_data.pubsub import decode_announcement

    latest: dict[str, int] = {}
    redis = Redis.from_url(redis_url)
    pubsub = redis.pubsub()
    await pubsub.subscribe(EVENTS_CHANNEL)
    ready.set()
    async for message in pubsub.listen():
        if message["type"] != "message":
            continue
        for topic, seq, frame in decode_announcement(message["data"]):
            if seq > latest.get(topic, 0):
                latest[topic] = seq
                yield topic, seq, frame


def _listen(fan_out: Callable[[], Coroutine[Any, Any, None]]) -> asyncio.Task[None]:
    """Run `fan_out` (the Redis listener); if it fails, log why and exit, so the benchmark
    reports a dead server with its log instead of waiting for frames that never come."""

    def failed(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (error := task.exception()) is not None:
            logging.getLogger(__name__).error("the Redis listener failed", exc_info=error)
            os._exit(1)

    task = asyncio.create_task(fan_out())
    task.add_done_callback(failed)
    return task


async def _until_sigterm() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


# ---- floor: websockets.broadcast plus a write-buffer guard ---------------------------------


async def _floor(port: int, redis_url: str) -> None:
    from websockets.asyncio.server import ServerConnection, broadcast, serve
    from websockets.http11 import Request, Response

    subscribers: dict[str, set[ServerConnection]] = {}
    latest: dict[str, int] = {}
    ready = asyncio.Event()

    def answer(connection: ServerConnection, text: str) -> None:
        broadcast([connection], text)  # written now, in order with the events

    async def handler(connection: ServerConnection) -> None:
        mine: set[str] = set()
        try:
            async for message in connection:
                try:
                    frame = parse_client_frame(str(message))
                except FrameError as exc:
                    answer(connection, encode(Error(exc.code, exc.message)))
                    continue
                if isinstance(frame, Subscribe):
                    name = frame.topic.name
                    answer(connection, encode(Subscribed(name, latest.get(name, 0))))
                    subscribers.setdefault(name, set()).add(connection)
                    mine.add(name)
                elif isinstance(frame, Unsubscribe):
                    subscribers.get(frame.topic.name, set()).discard(connection)
                    mine.discard(frame.topic.name)
                    answer(connection, encode(Unsubscribed(frame.topic.name)))
                else:
                    answer(connection, PONG_TEXT)
        finally:
            for name in mine:
                subscribers[name].discard(connection)

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        if request.path == "/readyz":
            return connection.respond(200 if ready.is_set() else 503, "ok\n")
        return None

    async def fan_out() -> None:
        async for topic, seq, frame in _announcements(redis_url, ready):
            latest[topic] = seq
            connections = subscribers.get(topic)
            if not connections:
                continue
            for connection in [
                c for c in connections if c.transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT
            ]:
                connections.discard(connection)
                connection.transport.abort()
            broadcast(connections, frame)

    async with serve(handler, HOST, port, compression=None, process_request=process_request):
        listener = _listen(fan_out)
        await _until_sigterm()
        listener.cancel()


# ---- socketio: python-socketio, a room per topic -------------------------------------------


async def _socketio(port: int, redis_url: str) -> None:
    import socketio
    import uvicorn

    sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins=[])
    latest: dict[str, int] = {}
    ready = asyncio.Event()

    async def subscribe(sid: str, topic: object) -> None:
        try:
            name = parse_topic(topic).name
        except TopicError as exc:
            error = Error(ErrorCode.UNKNOWN_TOPIC, str(exc), str(topic))
            await sio.emit(FrameType.ERROR.value, error.to_wire(), to=sid)
            return
        await sio.enter_room(sid, name)
        answer = Subscribed(name, latest.get(name, 0))
        await sio.emit(FrameType.SUBSCRIBED.value, answer.to_wire(), to=sid)

    sio.on(FrameType.SUBSCRIBE.value, subscribe)

    async def readyz(
        scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Any]
    ) -> None:
        status = 200 if ready.is_set() else 503
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"ok\n"})

    async def fan_out() -> None:
        async for topic, seq, frame in _announcements(redis_url, ready):
            latest[topic] = seq
            await sio.emit(FrameType.EVENT.value, json.loads(frame), room=topic)

    config = uvicorn.Config(
        socketio.ASGIApp(sio, other_asgi_app=readyz),
        host=HOST,
        port=port,
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        lifespan="off",
        log_level="warning",
        access_log=False,
    )
    listener = _listen(fan_out)
    try:
        await uvicorn.Server(config).serve()
    finally:
        listener.cancel()
