"""A small test client for `/api/ws` on the `websockets` library."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

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
        await self.connection.send(json.dumps(frame))

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
        await self.send(type="subscribe", topic=topic, after=after)
        reply = await self.recv()
        assert reply["type"] == "subscribed", reply
        return reply

    async def close(self) -> None:
        await self.connection.close()

    async def __aenter__(self) -> WsClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def events_of(frames: list[Frame], name: str | None = None) -> list[Frame]:
    return [f for f in frames if f["type"] == "event" and (name is None or f["event"] == name)]
