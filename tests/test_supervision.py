"""The pieces of `pulse up` on their own: restarts, stops, the secret key and the data-dir lock."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pulse_cli.children import Child, CrashLoopError, RestartPolicy, stop_all
from pulse_cli.datadir import DataDirError, load_or_create_secret, locked_data_dir
from tests.test_cli import Up, campaigns, login, start_up, wait_until

__all__ = ["start_up"]  # a fixture: `pulse up --headless` on a free port


def python_child(code: str, *, policy: RestartPolicy | None = None) -> Child:
    return Child(
        "test child",
        [sys.executable, "-c", code],
        dict(os.environ),
        policy=policy or RestartPolicy(),
    )


def test_a_child_that_keeps_crashing_is_given_up_on() -> None:
    child = python_child(
        "raise SystemExit(3)", policy=RestartPolicy(first_delay=0.01, max_restarts=3)
    )
    child.start()

    with pytest.raises(CrashLoopError, match="exited with code 3") as failure:
        wait_until(
            lambda: child.check(time.monotonic()), 30, "the child to be given up on", interval=0.01
        )

    assert "giving up" in str(failure.value)
    assert len(child.crashes) == 4


def test_a_crashed_child_is_restarted_after_a_backoff() -> None:
    child = python_child("raise SystemExit(1)", policy=RestartPolicy(first_delay=0.2))
    child.start()
    first = child.pid
    assert child.process is not None
    child.process.wait(timeout=10)

    noticed = time.monotonic()
    child.check(noticed)  # notices the crash and schedules the restart
    child.check(noticed + 0.19)  # still backing off
    assert child.pid == first
    child.check(noticed + 0.2)

    assert child.pid != first


def test_stop_all_kills_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    child = python_child(
        "import signal, sys, time, pathlib;"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        f"pathlib.Path({str(ready)!r}).touch();"
        "time.sleep(60)"
    )
    child.start()
    wait_until(ready.exists, 10, "the child to ignore SIGTERM", interval=0.01)

    stop_all([child], timeout=0.5)

    assert child.returncode == -signal.SIGKILL


def test_the_secret_key_is_made_once_and_readable_only_by_its_owner(tmp_path: Path) -> None:
    first = load_or_create_secret(tmp_path)
    second = load_or_create_secret(tmp_path)

    assert first == second
    assert len(first) >= 48
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_a_data_dir_in_use_is_refused(tmp_path: Path) -> None:
    with (
        locked_data_dir(tmp_path),
        pytest.raises(DataDirError, match="--data-dir"),
        locked_data_dir(tmp_path),
    ):
        pass


@pytest.mark.faults
def test_a_killed_embedded_redis_is_restarted_and_the_demo_works_again(
    start_up: Callable[[Path], Up], tmp_path: Path
) -> None:
    up = start_up(tmp_path / "data")
    redis = next(c for c in up.children() if "redis-server" in c.name())
    command_line = redis.cmdline()

    redis.kill()
    redis.wait(timeout=10)
    restarted = wait_until(
        lambda: next(
            (c for c in up.children() if "redis-server" in c.name() and c.pid != redis.pid), None
        ),
        30,
        "a new redis-server process",
    )
    wait_until(up.ready, 60, "/readyz to answer 200 again")
    token = login(up.url)

    assert restarted.cmdline() == command_line  # the same socket and settings
    assert campaigns(up.url, token).status_code == 200
    assert "the embedded Redis was killed by SIGKILL unexpectedly" in up.output()
    assert "restarting the embedded Redis" in up.output()
    assert up.stop() == 0
