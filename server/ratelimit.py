"""A small sliding-window limiter for login attempts, per client address and email."""

from __future__ import annotations

import time
from collections import deque


class AttemptLimiter:
    def __init__(
        self, attempts: int, window_seconds: float = 60.0, max_keys: int = 100_000
    ) -> None:
        self.attempts = attempts
        self.window = window_seconds
        self.max_keys = max_keys
        self._seen: dict[str, deque[float]] = {}

    def retry_after(self, key: str) -> float:
        """Seconds to wait before the next attempt is allowed (0 when allowed); records it."""
        now = time.monotonic()
        if len(self._seen) >= self.max_keys:
            self._forget_idle(now)
        stamps = self._seen.setdefault(key, deque())
        while stamps and now - stamps[0] >= self.window:
            stamps.popleft()
        if len(stamps) >= self.attempts:
            return self.window - (now - stamps[0])
        stamps.append(now)
        return 0.0

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, v in self._seen.items() if not v or now - v[-1] >= self.window]:
            del self._seen[key]
