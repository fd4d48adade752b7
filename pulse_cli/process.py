"""Real child processes for `pulse up`, the tests and the benchmarks: started in a process group
of their own, dying with their parent, waited on until ready, and always stopped."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Self, TypeVar

import httpx

from pulse_cli.network import is_ready

T = TypeVar("T")
P = TypeVar("P", bound="Process")
_PR_SET_PDEATHSIG = 1
_SIG_DFL = 0  # signal(2): the default action
STOP_TIMEOUT_SECONDS = 10.0
WORKER_STARTED = "Starting worker"  # the line a `pulse worker` logs once it takes jobs
LOG_TAIL_CHARS = 3000


class WaitTimeoutError(TimeoutError):
    """A condition did not come true in time; the message names what was waited for."""


class ProcessExitedError(RuntimeError):
    """A process exited while something waited for it; the message holds its log's tail."""


def child_preexec() -> None:
    """Ask Linux to SIGTERM the child when its parent dies, so nothing is left behind; and
    let SIGINT stop the child as it stops a command typed in a terminal, even when this parent
    was started in the background (which ignores SIGINT, and children inherit that).

    The signal fires when the *thread* that started the child ends: start children from a
    thread that lives as long as they should.
    """
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    libc.signal(signal.SIGINT, _SIG_DFL)  # Python's signal.signal works only in its main thread


def pulse_command(*args: str) -> list[str]:
    """The command line that runs `pulse <args>` with this interpreter.

    `-P`: the child never imports from the folder it was started in, where a `server.py` or
    `workers.py` of the user's would shadow our packages.
    """
    return [sys.executable, "-P", "-m", "pulse_cli", *args]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def wait_until(
    check: Callable[[], T | None], timeout: float, what: str, *, interval: float = 0.05
) -> T:
    """Poll `check` until it returns something truthy and return that; after `timeout` seconds
    raise WaitTimeoutError naming `what`. `check` may raise to give up early."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise WaitTimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


@dataclass
class Process:
    """One child process: its own process group, SIGTERMed when its parent dies, its output in
    `log_path` (or this process's terminal when None). A context manager that stops it.

    `error_path` keeps its standard error apart from the log. `pipes`: its standard input and
    output are pipes to this process instead (`stdin`, `stdout`), for children that talk.
    """

    name: str
    args: Sequence[str]
    env: Mapping[str, str] | None = None
    log_path: Path | None = None
    cwd: Path | None = None
    error_path: Path | None = None
    pipes: bool = False
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    log_start: int = field(default=0, init=False, repr=False)  # where this run's output begins

    def start(self) -> Self:
        """Start (or start again) the process; returns self."""
        env = None if self.env is None else dict(self.env)
        with contextlib.ExitStack() as files:
            log = errors = None
            if self.log_path is not None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                log = files.enter_context(self.log_path.open("ab"))
                log.write(f"\n=== start {self.name} at {time.time():.3f}\n".encode())
                log.flush()
                self.log_start = log.tell()
            if self.error_path is not None:
                self.error_path.parent.mkdir(parents=True, exist_ok=True)
                errors = files.enter_context(self.error_path.open("ab"))
            self.process = self._popen(env, log, errors)
        return self

    def _popen(
        self, env: dict[str, str] | None, log: IO[bytes] | None, errors: IO[bytes] | None
    ) -> subprocess.Popen[bytes]:
        if errors is None and log is not None:
            errors_to: IO[bytes] | int | None = subprocess.STDOUT
        else:
            errors_to = errors
        return subprocess.Popen(
            self.args,
            env=env,
            cwd=self.cwd,
            stdin=subprocess.PIPE if self.pipes else subprocess.DEVNULL,
            stdout=subprocess.PIPE if self.pipes else log,
            stderr=errors_to,
            preexec_fn=child_preexec,
            # Its own process group: a Ctrl-C in the terminal reaches only the parent, which
            # then stops its children in order.
            process_group=0,
        )

    @property
    def pid(self) -> int:
        if self.process is None:
            raise ProcessLookupError(f"{self.name} was never started")
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        """None while it runs (or before it started); else its exit code, -N for signal N."""
        return None if self.process is None else self.process.poll()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def stdin(self) -> IO[bytes]:
        """The pipe to its standard input (with `pipes`)."""
        assert self.process is not None and self.process.stdin is not None, "no pipes"
        return self.process.stdin

    @property
    def stdout(self) -> IO[bytes]:
        """The pipe from its standard output (with `pipes`)."""
        assert self.process is not None and self.process.stdout is not None, "no pipes"
        return self.process.stdout

    def wait(self, timeout: float | None = None) -> int:
        """Wait for it to exit (subprocess.TimeoutExpired after `timeout`); its exit code."""
        assert self.process is not None, f"{self.name} was never started"
        return self.process.wait(timeout)

    def communicate(self, given: bytes = b"", timeout: float | None = None) -> bytes:
        """Write `given` to its input, close it and read its output to the end (with `pipes`);
        waits for it to exit."""
        assert self.process is not None, f"{self.name} was never started"
        return self.process.communicate(given, timeout)[0]

    def signal(self, signum: int) -> None:
        """Send `signum` to the process's group, if it still runs."""
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signum)

    def kill9(self, timeout: float = 10.0) -> None:
        """SIGKILL the process itself (not its group) and reap it: no clean-up of any kind runs."""
        assert self.process is not None, f"{self.name} was never started"
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=timeout)

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int | None:
        """SIGTERM the group, wait up to `timeout`, then SIGKILL it; the exit code."""
        stop_all([self], timeout)
        return self.returncode

    def rss_kb(self) -> int:
        """Resident memory of the process, in KiB (from /proc)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise ProcessLookupError(f"no VmRSS for {self.name}")

    def log(self) -> str:
        """Everything the process wrote to its log file so far ('' without one)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def log_since_start(self) -> str:
        """What the process wrote to its log since it was last started."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(self.log_start)
            return log.read().decode(errors="replace")

    def tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        return self.log()[-chars:]

    def ensure_alive(self) -> None:
        """Raise ProcessExitedError, with the log's tail, when the process has exited."""
        code = self.returncode
        if code is not None:
            where = f"; its log {self.log_path}:\n{self.tail()}" if self.log_path else ""
            raise ProcessExitedError(f"{self.name} {describe_exit(code)}{where}")

    def __enter__(self) -> Self:
        return self if self.process is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def stop_all(
    processes: Iterable[Process],
    timeout: float = STOP_TIMEOUT_SECONDS,
    on_kill: Callable[[Process], None] | None = None,
) -> None:
    """SIGTERM every running process's group at once, wait up to `timeout` for all of them,
    then SIGKILL the groups still running (calling `on_kill` first for each)."""
    running = [p for p in processes if p.alive()]
    for process in running:
        process.signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in running:
        assert process.process is not None
        try:
            process.process.wait(timeout=max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            if on_kill is not None:
                on_kill(process)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.process.wait()


@contextmanager
def running(*processes: P, timeout: float = STOP_TIMEOUT_SECONDS) -> Iterator[tuple[P, ...]]:
    """Start `processes` in order; on leaving (an error and Ctrl-C included) stop them all
    together, as `stop_all` does."""
    try:
        for process in processes:
            process.start()
        yield processes
    finally:
        stop_all(processes, timeout)


def describe_exit(code: int) -> str:
    """'exited with code 1' or 'was killed by SIGKILL'."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def readyz(url: str, timeout: float = 2.0) -> tuple[int | None, str]:
    """The status and body of `url`/readyz; (None, the error) when it does not answer."""
    try:
        response = httpx.get(f"{url}/readyz", timeout=timeout)
    except httpx.HTTPError as exc:
        return None, repr(exc)
    return response.status_code, response.text


def wait_ready(url: str, timeout: float = 60.0, process: Process | None = None) -> None:
    """Wait until the server at `url` answers /readyz with 200; fail early when `process`
    (the server, or the `pulse up` that runs it) exits."""

    def ready() -> bool:
        if process is not None:
            process.ensure_alive()
        return is_ready(url)

    try:
        wait_until(ready, timeout, f"{url}/readyz to answer 200")
    except WaitTimeoutError as exc:
        status, body = readyz(url, timeout=5)
        log = f"\n{process.tail()}" if process is not None else ""
        raise WaitTimeoutError(f"{exc}; it answers {status}: {body}{log}") from None


def wait_log_line(process: Process, text: str, timeout: float = 60.0) -> None:
    """Wait until `text` shows in what the process logged since its last start; fail early
    when the process exits."""

    def logged() -> bool:
        process.ensure_alive()
        return text in process.log_since_start()

    wait_until(logged, timeout, f"{process.name} to log {text!r}")


def wait_worker_started(process: Process, timeout: float = 60.0) -> None:
    """Wait until a `pulse worker` (with a log file) has logged that it takes jobs."""
    wait_log_line(process, WORKER_STARTED, timeout)
