"""A small test client for `/api/ws` on the `websockets` library.

It sends and parses frames through `pulse_core.protocol`; `send` and `recv` also move raw JSON
objects, for tests that check the wire itself or send what a bad client would.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from pulse_core.names import FrameType
from pulse_core.protocol import (
    ClientFrame,
    Subscribe,
    Subscribed,
    encode,
    parse_server_frame,
)
from pulse_core.topics import parse_topic

Frame = dict[str, Any]


class WsClient:
    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    @classmethod
    async def open(cls, ws_url: str, token: str) -> WsClient:
        connection = await connect(
            ws_url, additional_headers={"Authorization": f"Bearer {token}"}, compression=None
        )
        return cls(connection)

    async def send(self, **frame: Any) -> None:
        """Any JSON object, even one the server must refuse."""
        await self.connection.send(json.dumps(frame))

    async def send_frame(self, frame: ClientFrame) -> None:
        await self.connection.send(encode(frame))

    async def recv(self, timeout: float = 5.0) -> Frame:
        async with asyncio.timeout(timeout):
            frame: Frame = json.loads(await self.connection.recv())
        return frame

    async def recv_until(self, done: Callable[[Frame], bool], timeout: float = 10.0) -> list[Frame]:
        """Every frame up to and including the first one for which `done` is true."""
        frames: list[Frame] = []
        async with asyncio.timeout(timeout):
            while True:
                frames.append(json.loads(await self.connection.recv()))
                if done(frames[-1]):
                    return frames

    async def subscribe(self, topic: str, after: int | None = None) -> Frame:
        await self.send_frame(Subscribe(parse_topic(topic), after))
        async with asyncio.timeout(5):
            text = await self.connection.recv()
        assert isinstance(parse_server_frame(text), Subscribed), text
        reply: Frame = json.loads(text)
        return reply

    async def close(self) -> None:
        await self.connection.close()

    async def __aenter__(self) -> WsClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def events_of(frames: list[Frame], name: str | None = None) -> list[Frame]:
    return [
        f for f in frames if f["type"] == FrameType.EVENT and (name is None or f["event"] == name)
    ]
