"""A small WebSocket server speaking the `/api/ws` protocol, for the client's failure tests.

It exists to make failures happen on demand (dropped connections, gaps, pruned history,
close code 4401), which the real backend cannot be asked to do; the end-to-end tests in
`test_live_backend.py` run against the real server.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Response

from pulse_core.names import CloseCode, FrameType
from pulse_core.protocol import (
    PONG_TEXT,
    ClientFrame,
    Ping,
    Resync,
    Subscribe,
    Subscribed,
    Unsubscribed,
    encode,
    parse_client_frame,
)


class StubWsServer:
    def __init__(self) -> None:
        self.log: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.pruned_upto: dict[str, int] = defaultdict(int)
        self.valid_tokens = {"good"}
        self.received: list[dict[str, Any]] = []
        self.connections: dict[ServerConnection, set[str]] = {}
        self.connects = 0
        self.server: Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> None:
        self.server = await serve(
            self._handler, "127.0.0.1", port, process_request=self._check_token
        )
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    def _check_token(self, connection: ServerConnection, request: Any) -> Response | None:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token == "refuse":
            return Response(401, "Unauthorized", Headers(), b"")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        self.connects += 1
        token = ws.request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.valid_tokens:
            await ws.close(CloseCode.UNAUTHORIZED, "token expired")
            return
        self.connections[ws] = set()
        try:
            async for text in ws:
                self.received.append(json.loads(text))
                await self._on_frame(ws, parse_client_frame(str(text)))
        finally:
            self.connections.pop(ws, None)

    async def _on_frame(self, ws: ServerConnection, frame: ClientFrame) -> None:
        if isinstance(frame, Ping):
            await ws.send(PONG_TEXT)
            return
        topic = frame.topic.name
        if not isinstance(frame, Subscribe):
            self.connections[ws].discard(topic)
            await ws.send(encode(Unsubscribed(topic)))
            return
        events = self.log[topic]
        await ws.send(encode(Subscribed(topic, len(events))))
        if frame.after is not None:
            if frame.after < self.pruned_upto[topic]:
                await ws.send(encode(Resync(topic, len(events))))
            else:
                for event in events[frame.after :]:
                    await ws.send(json.dumps(event))
        self.connections[ws].add(topic)

    async def publish(
        self, topic: str, campaign_id: int = 1, *, deliver: bool = True, **fields: Any
    ) -> dict[str, Any]:
        """Store an event on `topic` and send it to subscribers (unless `deliver` is False)."""
        seq = len(self.log[topic]) + 1
        event = {
            "type": FrameType.EVENT.value,
            "topic": topic,
            "seq": seq,
            "event": fields.pop("event", "campaign_updated"),
            "campaign_id": campaign_id,
            "ts": "2025-01-01T00:00:00.000Z",
            **fields,
        }
        self.log[topic].append(event)
        if deliver:
            await self.send_raw(topic, event)
        return event

    async def send_raw(self, topic: str, frame: dict[str, Any]) -> None:
        for ws, topics in list(self.connections.items()):
            if topic in topics:
                await ws.send(json.dumps(frame))

    async def drop_all(self, code: int = 1012) -> None:
        for ws in list(self.connections):
            await ws.close(code, "dropped by the test")

    def history(self, topic: str, after: int) -> list[dict[str, Any]]:
        return [
            e for e in self.log[topic][after : after + 100] if e["seq"] > self.pruned_upto[topic]
        ]
