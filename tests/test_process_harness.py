"""The harness for real child processes: start, readiness waits, logs, and stops that always
clean up, including the process's whole group."""

from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path

import psutil
import pytest

from pulse_cli.process import (
    Process,
    ProcessExitedError,
    WaitTimeoutError,
    free_port,
    running,
    wait_log_line,
    wait_ready,
    wait_until,
)


def python(name: str, code: str, log: Path) -> Process:
    return Process(name, [sys.executable, "-c", code], dict(os.environ), log_path=log)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_timed_out_wait_names_what_it_waited_for() -> None:
    with pytest.raises(WaitTimeoutError, match="waiting for the moon to rise"):
        wait_until(lambda: None, 0.05, "the moon to rise", interval=0.01)


def test_a_wait_returns_the_first_truthy_answer() -> None:
    answers = iter([None, 0, "", "here"])

    assert wait_until(lambda: next(answers), 5, "an answer", interval=0) == "here"


def test_a_free_port_can_be_listened_on() -> None:
    port = free_port()

    with socket.socket() as server:
        server.bind(("127.0.0.1", port))


def test_output_goes_to_the_log_and_the_process_ends_with_its_context(tmp_path: Path) -> None:
    code = "import time; print('listening', flush=True); time.sleep(60)"
    with python("sleeper", code, tmp_path / "sleeper.log") as sleeper:
        wait_log_line(sleeper, "listening", timeout=30)
        assert sleeper.alive()
        assert sleeper.rss_kb() > 0
        pid = sleeper.pid

    assert not sleeper.alive()
    assert sleeper.returncode == -signal.SIGTERM
    assert gone(pid)
    assert "=== start sleeper" in sleeper.log()


def test_stop_kills_a_group_that_ignores_sigterm(tmp_path: Path) -> None:
    grandchild = tmp_path / "grandchild.pid"
    code = (
        "import signal, subprocess, sys, time, pathlib;"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        "p = subprocess.Popen([sys.executable, '-c', "
        "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)']);"
        f"pathlib.Path({str(grandchild)!r}).write_text(str(p.pid));"
        "print('both running', flush=True); time.sleep(60)"
    )
    stubborn = python("stubborn", code, tmp_path / "stubborn.log").start()
    wait_log_line(stubborn, "both running", timeout=30)

    assert stubborn.stop(timeout=0.5) == -signal.SIGKILL
    wait_until(lambda: gone(int(grandchild.read_text())), 10, "the grandchild to be killed")


def test_ctrl_c_stops_a_child_even_when_the_parent_ignores_it(tmp_path: Path) -> None:
    """As a command typed in a terminal: a parent started in the background ignores SIGINT,
    which its children would inherit."""
    code = (
        "import time\n"
        "try:\n"
        "    print('waiting', flush=True); time.sleep(60)\n"
        "except KeyboardInterrupt:\n"
        "    print('stopped by Ctrl-C', flush=True)\n"
    )
    ignored = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with python("waiter", code, tmp_path / "waiter.log") as waiter:
            wait_log_line(waiter, "waiting", timeout=30)
            waiter.signal(signal.SIGINT)
            assert waiter.wait(timeout=30) == 0
    finally:
        signal.signal(signal.SIGINT, ignored)

    assert "stopped by Ctrl-C" in waiter.log()


def test_the_context_stops_the_process_when_the_body_fails(tmp_path: Path) -> None:
    sleeper = python("sleeper", "import time; time.sleep(60)", tmp_path / "s.log")

    with pytest.raises(KeyboardInterrupt), sleeper:
        raise KeyboardInterrupt

    assert not sleeper.alive()


def test_a_wait_for_readiness_fails_at_once_when_the_server_exits(tmp_path: Path) -> None:
    broken = python("server", "print('no database'); raise SystemExit(3)", tmp_path / "s.log")

    with broken, pytest.raises(ProcessExitedError, match="exited with code 3") as failure:
        wait_ready(f"http://127.0.0.1:{free_port()}", timeout=60, process=broken)

    assert "no database" in str(failure.value)


def test_a_log_line_from_before_a_restart_does_not_count(tmp_path: Path) -> None:
    worker = python("worker", "print('Starting worker', flush=True)", tmp_path / "w.log")
    worker.start()
    wait_until(lambda: worker.returncode is not None, 30, "the first run to end")
    worker.args = [sys.executable, "-c", "import time; time.sleep(60)"]

    with worker.start(), pytest.raises(WaitTimeoutError, match="to log 'Starting worker'"):
        wait_log_line(worker, "Starting worker", timeout=0.2)


def test_kill9_kills_only_the_process(tmp_path: Path) -> None:
    sleeper = python("sleeper", "import time; time.sleep(60)", tmp_path / "s.log").start()

    sleeper.kill9()

    assert sleeper.returncode == -signal.SIGKILL


def test_running_stops_every_process_even_when_a_later_one_cannot_start(tmp_path: Path) -> None:
    first = python("first", "import time; time.sleep(60)", tmp_path / "first.log")
    missing = Process("missing", [str(tmp_path / "no-such-program")])

    with pytest.raises(FileNotFoundError), running(first, missing):
        pass

    assert first.returncode == -signal.SIGTERM


def test_a_child_with_pipes_answers_what_it_is_sent(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "print('ready', flush=True)\n"
        "lines = sys.stdin.read().splitlines()\n"
        "print('warned', file=sys.stderr)\n"
        "print(len(lines), flush=True)\n"
    )
    talker = Process(
        "talker",
        [sys.executable, "-c", code],
        dict(os.environ),
        error_path=tmp_path / "talker.err",
        pipes=True,
    )
    with talker:
        assert talker.stdout.readline() == b"ready\n"
        answer = talker.communicate(b"one\ntwo\n", timeout=30)

    assert answer == b"2\n"
    assert talker.returncode == 0
    assert (tmp_path / "talker.err").read_text() == "warned\n"


def test_output_and_errors_can_go_to_two_files(tmp_path: Path) -> None:
    code = "import sys; print('out', flush=True); print('err', file=sys.stderr)"
    both = Process(
        "both",
        [sys.executable, "-c", code],
        dict(os.environ),
        log_path=tmp_path / "out.log",
        error_path=tmp_path / "err.log",
    ).start()

    assert both.wait(timeout=30) == 0
    assert both.log_since_start() == "out\n"
    assert (tmp_path / "err.log").read_text() == "err\n"
