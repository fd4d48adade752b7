"""A corporate network in miniature: an HTTP CONNECT proxy and a TLS front for a plain server.

`ConnectProxy` tunnels `CONNECT host:port` to the address `hosts` maps that name to (a name
no resolver knows: only traffic that went through the proxy can reach it) and records each
tunnel it opened. `TlsFront` serves TLS with a test certificate and forwards the plain bytes.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Awaitable, Callable

from tests.backend import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class _LoopServer:
    """One asyncio server in a thread of its own, on a free loopback port."""

    def __init__(self, handler: Handler, ssl_context: ssl.SSLContext | None = None) -> None:
        self.port = free_port()
        self._handler = handler
        self._ssl = ssl_context
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handler, "127.0.0.1", self.port, ssl=self._ssl)
        self._started.set()
        async with server:
            await self._stop.wait()

    def start(self) -> None:
        self._thread.start()
        if not self._started.wait(10):
            raise AssertionError("the test server did not start")

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


async def _splice(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int) -> None:
    try:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        writer.close()
        return
    await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


class ConnectProxy(_LoopServer):
    """`CONNECT name:port` to `hosts[name]` (a loopback port); anything else gets 403."""

    def __init__(self, hosts: dict[str, int]) -> None:
        super().__init__(self._handle)
        self.hosts = hosts
        self.tunnels: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        method, target, _version = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        port = self.hosts.get(target.rsplit(":", 1)[0])
        if method != "CONNECT" or port is None:
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            writer.close()
            return
        self.tunnels.append(target)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await _splice(reader, writer, port)


class TlsFront(_LoopServer):
    """Serves TLS with `ssl_context` and forwards the decrypted bytes to a plain port."""

    def __init__(self, upstream_port: int, ssl_context: ssl.SSLContext) -> None:
        super().__init__(lambda r, w: _splice(r, w, upstream_port), ssl_context)
