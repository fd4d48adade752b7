"""The slow-update alert: the p99 of the broadcast latency over the last minute, against a limit.

Latencies are counted in per-second slots of fine log-spaced buckets (each 10 % wider than the
one before), so observing costs a bisect and an increment, and the p99 is the upper bound of its
bucket: at most 10 % above the true value, never below it. While the p99 is over the limit, one
error is logged per minute.
"""

from __future__ import annotations

import logging
import math
import time
from bisect import bisect_left
from collections.abc import Callable

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60
ERROR_INTERVAL_SECONDS = 60.0
EVALUATE_INTERVAL_SECONDS = 1.0
SMALLEST_BOUND_SECONDS = 0.0005
LARGEST_BOUND_SECONDS = 3600.0
GROWTH = 1.1


def _bounds() -> tuple[float, ...]:
    count = math.ceil(math.log(LARGEST_BOUND_SECONDS / SMALLEST_BOUND_SECONDS, GROWTH)) + 1
    return tuple(SMALLEST_BOUND_SECONDS * GROWTH**k for k in range(count))


BOUNDS = _bounds()


class SlowBroadcastAlarm:
    """Tracks the last minute's broadcast latencies; `slow` while their p99 is over the limit."""

    def __init__(
        self, threshold_seconds: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = threshold_seconds
        self._clock = clock
        self._slots: dict[int, list[int]] = {}
        self._next_evaluation = -math.inf
        self._last_error: float | None = None
        self.p99 = 0.0
        self.slow = False

    def observe(self, seconds: float) -> None:
        now = self._clock()
        slot = self._slots.get(second := int(now))
        if slot is None:
            slot = self._slots[second] = [0] * (len(BOUNDS) + 1)
        slot[bisect_left(BOUNDS, seconds)] += 1
        if now >= self._next_evaluation:
            self.evaluate()

    def evaluate(self) -> float:
        """Recompute the last minute's p99 (0 with no events), log if slow; returns the p99."""
        now = self._clock()
        self._next_evaluation = now + EVALUATE_INTERVAL_SECONDS
        oldest = int(now) - WINDOW_SECONDS + 1
        for second in [s for s in self._slots if s < oldest]:
            del self._slots[second]
        self.p99 = self._percentile(0.99)
        was_slow, self.slow = self.slow, self.p99 > self.threshold
        if self.slow and (
            self._last_error is None or now - self._last_error >= ERROR_INTERVAL_SECONDS
        ):
            self._last_error = now
            log.error(
                "updates are slow: the p99 broadcast latency over the last minute is %.0f ms, "
                "above PULSE_SLOW_BROADCAST_MS=%.0f",
                self.p99 * 1000,
                self.threshold * 1000,
            )
        elif was_slow and not self.slow:
            log.warning(
                "updates are back to normal: p99 broadcast latency %.0f ms", self.p99 * 1000
            )
        return self.p99

    def _percentile(self, fraction: float) -> float:
        counts = [sum(column) for column in zip(*self._slots.values(), strict=True)]
        total = sum(counts)
        if not total:
            return 0.0
        rank = math.ceil(fraction * total)
        seen = 0
        for index, count in enumerate(counts):
            seen += count
            if seen >= rank:
                return BOUNDS[index] if index < len(BOUNDS) else math.inf
        return math.inf  # pragma: no cover - the loop always reaches the rank
