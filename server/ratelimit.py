"""Login attempts per client address and email, counted in the deployment's Redis (`limits`).

Every server of a deployment shares the count. While Redis does not answer, each server counts
on its own instead, so logins keep working and guessing stays limited.
"""

from __future__ import annotations

import hashlib
import logging
import time

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio import ConnectionPool

log = logging.getLogger(__name__)

KEY_PREFIX = "pulse:login-attempts"
# A login waits at most this long for Redis before it is counted locally.
REDIS_TIMEOUT_SECONDS = 2.0
# A refused attempt always waits a little, even when its window ends this very instant.
MIN_WAIT_SECONDS = 0.001


class LoginLimiter:
    """A moving window of `attempts_per_minute` per key, shared through Redis."""

    def __init__(self, redis_url: str, attempts_per_minute: int) -> None:
        self.limit = RateLimitItemPerMinute(attempts_per_minute)
        self._pool = ConnectionPool.from_url(
            redis_url,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
        )
        shared = RedisStorage(
            "async+redis://",
            implementation="redispy",
            wrap_exceptions=True,
            key_prefix=KEY_PREFIX,
            # Documented by `limits`, though its annotation lists only plain values.
            connection_pool=self._pool,  # type: ignore[arg-type]
        )
        self._shared = MovingWindowRateLimiter(shared)
        self._local = MovingWindowRateLimiter(MemoryStorage())
        self._counting_locally = False

    async def retry_after(self, key: str) -> float:
        """Seconds to wait before the next attempt is allowed (0 when allowed); records it."""
        identity = hashlib.sha256(key.encode("utf-8", "backslashreplace")).hexdigest()
        try:
            wait = await self._retry_after(self._shared, identity)
        except (StorageError, OSError) as exc:
            if not self._counting_locally:
                self._counting_locally = True
                log.warning(
                    "Redis does not answer (%s): login attempts are counted by this server "
                    "alone until it does",
                    getattr(exc, "storage_error", exc),
                )
            return await self._retry_after(self._local, identity)
        if self._counting_locally:
            self._counting_locally = False
            log.warning("Redis answers again: login attempts are counted for every server")
        return wait

    async def _retry_after(self, limiter: MovingWindowRateLimiter, identity: str) -> float:
        if await limiter.hit(self.limit, identity):
            return 0.0
        window = await limiter.get_window_stats(self.limit, identity)
        return max(window.reset_time - time.time(), MIN_WAIT_SECONDS)

    async def aclose(self) -> None:
        await self._pool.disconnect()
