"""A QThread that runs its own asyncio event loop, for the network client.

Coroutines are submitted from the GUI thread and come back as `concurrent.futures.Future`s;
nothing here touches a widget. Stopping cancels what is left and closes the loop, so tests
leave no global state behind.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from PySide6.QtCore import QThread

log = logging.getLogger(__name__)
T = TypeVar("T")


class AsyncRunner(QThread):
    """One asyncio loop in one thread, started with `start_loop()`, ended with `stop()`."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("pulse-asyncio")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "call start_loop() first"
        return self._loop

    def start_loop(self) -> None:
        self.start()
        self._ready.wait()

    def run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.set_exception_handler(_log_exception)
        self._loop = loop
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run `coro` on the loop; safe to call from any thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call_soon(self, callback: Any, *args: Any) -> None:
        self.loop.call_soon_threadsafe(callback, *args)

    def stop(self, timeout_ms: int = 5000) -> None:
        if self._loop is not None and self.isRunning():
            self._loop.call_soon_threadsafe(self._loop.stop)
            if not self.wait(timeout_ms):
                log.warning("the network thread did not stop within %d ms", timeout_ms)


def _log_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    log.error("asyncio: %s", context.get("message"), exc_info=context.get("exception"))
