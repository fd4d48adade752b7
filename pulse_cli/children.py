"""Child processes of `pulse up`: started, watched, restarted with backoff, and stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pulse_cli import console
from pulse_cli.process import child_preexec

STOP_TIMEOUT_SECONDS = 10.0


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


def describe_exit(code: int) -> str:
    """'exited with code 1' or 'was killed by SIGKILL'."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def pulse_command(*args: str) -> list[str]:
    """The command line that runs `pulse <args>` with this interpreter.

    `-P`: the child never imports from the folder it was started in, where a `server.py` or
    `workers.py` of the user's would shadow our packages.
    """
    return [sys.executable, "-P", "-m", "pulse_cli", *args]


@dataclass
class Child:
    """One child process; `check()` notices when it dies and restarts it (if `restart`)."""

    name: str
    args: Sequence[str]
    env: Mapping[str, str]
    restart: bool = True
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    error_hint: str = "Its error is in the output above."
    process: subprocess.Popen[bytes] | None = None
    crashes: list[float] = field(default_factory=list)
    restart_at: float | None = None

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.args,
            env=dict(self.env),
            stdin=subprocess.DEVNULL,
            preexec_fn=child_preexec,
            # Its own process group: a Ctrl-C in the terminal reaches only the supervisor,
            # which then stops the children in order.
            process_group=0,
        )
        self.restart_at = None

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

    def signal(self, signum: int) -> None:
        """Send `signum` to the child's process group, if it still runs."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)


def stop_all(children: Sequence[Child], timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """SIGTERM every child, wait up to `timeout`, then SIGKILL the ones still running."""
    running = [c for c in children if c.process is not None and c.process.poll() is None]
    for child in running:
        child.restart_at = None
        child.signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in running:
        assert child.process is not None
        try:
            child.process.wait(timeout=max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            console.warn(f"the {child.name} did not stop within {timeout:g} s; killing it")
            child.signal(signal.SIGKILL)
            child.process.wait()
