"""Measures how late a short QTimer fires: the GUI event loop's responsiveness, in ms."""

from __future__ import annotations

import statistics
import time

from PySide6.QtCore import QObject, Qt, QTimer

INTERVAL_MS = 5


class LatencyProbe(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.samples_ms: list[float] = []
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(INTERVAL_MS)
        self._timer.timeout.connect(self._tick)
        self._last = 0.0

    def start(self) -> None:
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.samples_ms.append(max(0.0, (now - self._last) * 1000 - INTERVAL_MS))
        self._last = now

    def percentile(self, p: float) -> float:
        if not self.samples_ms:
            return 0.0
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def summary(self) -> str:
        if not self.samples_ms:
            return "no samples"
        return (
            f"event-loop lateness over {len(self.samples_ms)} ticks: "
            f"p50 {self.percentile(50):.1f} ms, p99 {self.percentile(99):.1f} ms, "
            f"max {max(self.samples_ms):.1f} ms, mean {statistics.fmean(self.samples_ms):.1f} ms"
        )
