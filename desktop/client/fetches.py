"""One fetch at a time per campaign, and never a request lost while one is under way."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)


class SerialFetches(Generic[Key]):
    """Runs `fetch(key)` for at most one caller at a time per key.

    A request made while that key's fetch is under way does not start a second one beside
    it (two answers could then arrive in either order) and is not dropped either (the running
    fetch may have read the server before the change that prompted the request): the running
    fetch is followed by exactly one more, however many requests came in meanwhile. So the
    last answer applied always started after the last request. Use it from one event loop.
    """

    def __init__(self, fetch: Callable[[Key], Awaitable[None]]) -> None:
        self._fetch = fetch
        self._running: set[Key] = set()
        self._again: set[Key] = set()

    def running(self, key: Key) -> bool:
        return key in self._running

    async def request(self, key: Key) -> None:
        """Fetch `key` now, or after the fetch under way.

        Errors reach the caller that runs the fetches; a failure followed by a pending
        request is superseded by the next attempt.
        """
        if key in self._running:
            self._again.add(key)
            return
        self._running.add(key)
        try:
            while True:
                self._again.discard(key)
                try:
                    await self._fetch(key)
                except Exception:
                    if key not in self._again:
                        raise
                if key not in self._again:
                    return
        finally:
            self._running.discard(key)
            self._again.discard(key)
