"""The WebSocket endpoint `/api/ws` over ASGI: the fallback path.

Under uvicorn the connections of `/api/ws` are served by `server.ws_native` and never reach
this endpoint; under any other ASGI server (or uvicorn's other WebSocket implementations) they
do. The logic is `server.wssession.Session`'s; here each connection has a bounded queue of
frames and a writer task that sends them through the ASGI `send`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from contextlib import suppress

from fastapi import APIRouter, WebSocket

from server.fanout import LatencySink
from server.state import ServerState
from server.wssession import Session, bearer_token

log = logging.getLogger(__name__)
router = APIRouter()

CLOSE_TIMEOUT_SECONDS = 2.0


class QueuedSession(Session):
    """A session whose frames wait in a bounded queue for the connection's writer task."""

    __slots__ = ("closing", "done", "drained", "probes", "queue", "wakeup", "websocket")

    def __init__(self, state: ServerState, websocket: WebSocket) -> None:
        super().__init__(state)
        self.websocket = websocket
        self.queue: deque[str] = deque()
        self.wakeup = asyncio.Event()
        self.drained = asyncio.Event()
        self.drained.set()
        self.closing: tuple[int, str, str | None] | None = None
        self.done = asyncio.Event()
        # Frames whose broadcast latency is measured, oldest first, with their sink.
        self.probes: deque[tuple[str, float, LatencySink]] | None = None

    @property
    def queue_limit(self) -> int:
        return self.state.settings.send_queue_frames

    def offer(self, frame: str, wire: bytes) -> None:
        self.send(frame)

    def send(self, text: str) -> None:
        if self.closed:
            return
        if len(self.queue) >= self.queue_limit:
            self.queue.clear()
            self.probes = None
            self.mark_slow()
            return
        self.queue.append(text)
        self.drained.clear()
        self.wakeup.set()

    async def put(self, frame: str) -> None:
        while len(self.queue) >= self.queue_limit // 2 and not self.closed:
            await self.drained.wait()
        self.send(frame)

    def probe(self, frame: str, committed: float, sink: LatencySink) -> None:
        if self.queue and self.queue[-1] is frame:
            if self.probes is None:
                self.probes = deque()
            self.probes.append((frame, committed, sink))

    def _close(self, code: int, reason: str, last: str | None) -> None:
        self.queue.clear()
        self.probes = None
        self.closing = (code, reason, last)
        self.done.set()
        self.drained.set()
        self.wakeup.set()

    async def write(self) -> None:
        """Send queued frames until the session closes; then its last frame and the close."""
        queue = self.queue
        while self.closing is None:
            await self.wakeup.wait()
            self.wakeup.clear()
            while queue:
                frame = queue.popleft()
                await self.websocket.send_text(frame)
                if self.probes and frame is self.probes[0][0]:
                    _, committed, sink = self.probes.popleft()
                    sink(time.time() - committed)
            self.drained.set()
        code, reason, last = self.closing
        with suppress(Exception):
            async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
                if last is not None:
                    await self.websocket.send_text(last)
                await self.websocket.close(code, reason)

    async def read(self) -> None:
        """Answer the client's frames, one after the other, until it disconnects."""
        while not self.closed:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            work = self.receive(message.get("text"))
            if work is not None:
                await work


@router.websocket("/api/ws")
async def websocket_endpoint(websocket: WebSocket) -> None:
    state: ServerState = websocket.app.state.pulse
    token = bearer_token(
        websocket.headers.get("authorization", ""), websocket.query_params.get("access_token")
    )
    await websocket.accept()
    session = QueuedSession(state, websocket)
    writer = asyncio.create_task(session.write())
    reader: asyncio.Task[None] | None = None
    closed = asyncio.create_task(session.done.wait())
    try:
        if await session.start(token):
            reader = asyncio.create_task(session.read())
            await asyncio.wait((reader, closed), return_when=asyncio.FIRST_COMPLETED)
            if reader.done() and not reader.cancelled() and (failure := reader.exception()):
                session.failed(failure)
        session.detach()  # the client left, or the session is closing
        if session.closing is not None:
            # The last frame and the close, unless the client reads nothing at all.
            await asyncio.wait((writer,), timeout=CLOSE_TIMEOUT_SECONDS)
    finally:
        session.detach()
        for task in (reader, writer, closed):
            if task is not None and not task.done():
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
