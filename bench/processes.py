"""Process helpers for the benchmarks (Linux): CPU time of a process, busy time of
the cores, pinning, open-file limits, and children that never outlive their parent."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import threading
import time

from pulse_cli.process import child_preexec

HOST = "127.0.0.1"


class BenchError(RuntimeError):
    """The benchmark could not measure; the message says what went wrong."""


def die_with_parent() -> None:
    """SIGTERM this process when its parent dies, so nothing outlives an interrupted run."""
    child_preexec()


def raise_nofile(wanted: int) -> int:
    """Raise this process's open-file limit to `wanted` if it can; returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return soft
    infinite = resource.RLIM_INFINITY
    for limits in ((wanted, max(hard, wanted) if hard != infinite else hard), (hard, hard)):
        if limits[0] == infinite:
            continue
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, limits)
            break
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        text = stat.read()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def core_busy_seconds() -> dict[int, float]:
    """Busy time of every core since boot (all processes), from /proc/stat."""
    busy = {}
    tick = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as stat:
        for line in stat:
            name, *values = line.split()
            if name.startswith("cpu") and name != "cpu":
                numbers = [int(value) for value in values]
                idle = numbers[3] + (numbers[4] if len(numbers) > 4 else 0)
                busy[int(name[3:])] = (sum(numbers[:8]) - idle) / tick
    return busy


def split_cores() -> tuple[int | None, set[int] | None]:
    """One core for the server, the rest for everyone else; (None, None) on a 1-core machine."""
    try:
        cores = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None, None
    if len(cores) < 2:
        return None, None
    return cores[0], set(cores[1:])


def pin(pid: int, cores: set[int] | None) -> None:
    if cores:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, cores)


def lifetime_watchdog(seconds: float) -> None:
    """SIGTERM this process after `seconds`, and exit hard 15 s later: nothing runs forever."""

    def fire() -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(15)
        os._exit(3)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
