"""Child processes of `pulse up`: watched, restarted with backoff, and stopped in order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Self

from pulse_cli import console, process
from pulse_cli.process import Process, describe_exit, pulse_command

STOP_TIMEOUT_SECONDS = process.STOP_TIMEOUT_SECONDS

__all__ = [
    "Child",
    "CrashLoopError",
    "RestartPolicy",
    "describe_exit",
    "pulse_command",
    "stop_all",
]


class CrashLoopError(RuntimeError):
    """A child kept dying right after each restart; the supervisor gives up."""


@dataclass(frozen=True)
class RestartPolicy:
    """Exponential backoff between restarts; too many restarts in a window is a crash loop."""

    first_delay: float = 0.5
    max_delay: float = 10.0
    max_restarts: int = 5
    window_seconds: float = 60.0

    def delay(self, recent_crashes: int) -> float:
        return min(self.first_delay * 2.0 ** max(recent_crashes - 1, 0), self.max_delay)


@dataclass
class Child(Process):
    """One supervised process; `check()` notices when it dies and restarts it (if `restart`)."""

    restart: bool = True
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    error_hint: str = "Its error is in the output above."
    crashes: list[float] = field(default_factory=list)
    restart_at: float | None = None

    def start(self) -> Self:
        super().start()
        self.restart_at = None
        return self

    def check(self, now: float) -> None:
        """Restart a child that died, after a backoff; raise CrashLoopError when it keeps dying."""
        if self.process is None:
            return
        if self.restart_at is not None:
            if now >= self.restart_at:
                console.info(f"restarting the {self.name}")
                self.start()
            return
        code = self.process.poll()
        if code is None or not self.restart:
            return
        self.crashes = [t for t in self.crashes if now - t < self.policy.window_seconds]
        self.crashes.append(now)
        if len(self.crashes) > self.policy.max_restarts:
            raise CrashLoopError(
                f"the {self.name} stopped {len(self.crashes)} times within "
                f"{self.policy.window_seconds:.0f} s (last time it {describe_exit(code)}); "
                f"giving up. {self.error_hint}"
            )
        delay = self.policy.delay(len(self.crashes))
        console.warn(
            f"the {self.name} {describe_exit(code)} unexpectedly; restarting in {delay:g} s"
        )
        self.restart_at = now + delay


def stop_all(children: Sequence[Child], timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """SIGTERM every child, wait up to `timeout`, then SIGKILL the ones still running."""
    for child in children:
        child.restart_at = None

    def warn(child: Process) -> None:
        console.warn(f"the {child.name} did not stop within {timeout:g} s; killing it")

    process.stop_all(children, timeout, on_kill=warn)
