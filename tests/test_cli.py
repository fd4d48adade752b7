"""The `pulse` command as a person runs it: real processes, real ports, real signals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from pulse_cli.network import is_ready
from pulse_cli.process import Process, free_port, stop_all, wait_ready, wait_until
from tests.conftest import TEST_SECRET

PULSE = [sys.executable, "-m", "pulse_cli"]
DEMO_MEMBERS = 300
START_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any PULSE_* setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
    return {**env, **extra}


def run_pulse(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PULSE, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@dataclass
class Up:
    """One `pulse up --headless` process and what it printed."""

    process: Process
    url: str
    data_dir: Path

    def output(self) -> str:
        return self.process.log()

    def ready(self) -> bool:
        self.process.ensure_alive()
        return is_ready(self.url)

    def children(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def child(self, command: str) -> psutil.Process:
        """The child running `pulse <command>` (server, worker)."""
        for child in self.children():
            cmdline = child.cmdline()
            if "pulse_cli" in cmdline and cmdline[-1] == command:
                return child
        raise AssertionError(f"no `pulse {command}` child; children: {self.children()}")

    def stop(self, signum: int = signal.SIGTERM) -> int | None:
        """Send `signum` to `pulse up` alone, as a user would; its exit code."""
        os.kill(self.process.pid, signum)
        wait_until(lambda: not self.process.alive(), STOP_TIMEOUT, "pulse up to exit")
        return self.process.returncode


def folder_with_our_module_names(parent: Path) -> Path:
    """A folder of the user's whose server.py and workers.py fail when imported: `pulse up`
    started in it must still work, its children never importing from the current folder."""
    folder = parent / "folder-with-server-py"
    folder.mkdir(exist_ok=True)
    for name in ("server", "workers"):
        (folder / f"{name}.py").write_text(f"raise RuntimeError('{name}.py of the current folder')")
    return folder


@pytest.fixture
def start_up(tmp_path: Path) -> Iterator[Callable[[Path], Up]]:
    """Starts `pulse up --headless` on a free port, in a folder holding a server.py and a
    workers.py that fail on import; stops whatever is left at the end."""
    started: list[Process] = []

    def start(data_dir: Path) -> Up:
        port = free_port()
        process = Process(
            "pulse up",
            [*PULSE, "up", "--headless", "--data-dir", str(data_dir), "--port", str(port)],
            clean_env(PULSE_DEMO_MEMBERS=str(DEMO_MEMBERS)),
            log_path=tmp_path / f"up-{len(started)}.log",
            cwd=folder_with_our_module_names(tmp_path),
        )
        started.append(process.start())
        up = Up(process, f"http://127.0.0.1:{port}", data_dir)
        wait_ready(up.url, START_TIMEOUT, process)
        return up

    yield start
    stop_all(started, STOP_TIMEOUT)


def assert_all_gone(processes: list[psutil.Process]) -> None:
    def gone(process: psutil.Process) -> bool:
        try:
            return process.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    for process in processes:
        wait_until(lambda p=process: gone(p), STOP_TIMEOUT, f"{process} to exit")


def login(url: str, email: str = "alice@acme.example") -> str:
    response = httpx.post(
        f"{url}/api/auth/login", json={"email": email, "password": "pulse-demo"}, timeout=10
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def campaigns(url: str, token: str) -> httpx.Response:
    return httpx.get(
        f"{url}/api/campaigns", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def test_help_lists_every_command() -> None:
    result = run_pulse("--help", env=clean_env())

    assert result.returncode == 0
    for command in ("up", "server", "worker", "desktop", "db", "seed", "members", "events"):
        assert command in result.stdout


def test_server_without_secret_key_exits_2_naming_it() -> None:
    result = run_pulse("server", env=clean_env(PULSE_REDIS_URL="redis://127.0.0.1:1/0"))

    assert result.returncode == 2
    assert "PULSE_SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_server_refuses_a_known_default_secret_key() -> None:
    env = clean_env(PULSE_REDIS_URL="redis://127.0.0.1:1/0", PULSE_SECRET_KEY="changeme")

    result = run_pulse("server", env=env)

    assert result.returncode == 2
    assert "PULSE_SECRET_KEY" in result.stderr


def test_worker_without_redis_url_exits_2_naming_it() -> None:
    result = run_pulse("worker", env=clean_env(PULSE_SECRET_KEY=TEST_SECRET))

    assert result.returncode == 2
    assert "PULSE_REDIS_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_invalid_setting_is_named_in_one_line() -> None:
    env = clean_env(PULSE_SECRET_KEY=TEST_SECRET, PULSE_PORT="eighty")

    result = run_pulse("server", env=env)

    assert result.returncode == 2
    assert "PULSE_PORT" in result.stderr
    assert "Traceback" not in result.stderr


def test_db_upgrade_and_seed_by_hand_are_idempotent(tmp_path: Path) -> None:
    env = clean_env(PULSE_DATA_DIR=str(tmp_path / "data"), PULSE_DEMO_MEMBERS="100")

    upgrades = [run_pulse("db", "upgrade", env=env) for _ in range(2)]
    seeds = [run_pulse("seed", "--demo", env=env) for _ in range(2)]

    assert [r.returncode for r in upgrades + seeds] == [0, 0, 0, 0], seeds[0].stderr
    assert "up to date" in upgrades[1].stderr
    assert "demo data loaded" in seeds[0].stderr
    assert "already there" in seeds[1].stderr
    assert (tmp_path / "data" / "pulse.sqlite3").exists()


def test_up_on_a_port_in_use_says_so_and_exits(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])

        result = run_pulse(
            "up", "--headless", "--data-dir", str(tmp_path / "data"), "--port", port,
            env=clean_env(),
        )  # fmt: skip

    assert result.returncode == 1
    assert "already in use" in result.stderr
    assert "--port" in result.stderr


def test_up_headless_serves_the_demo_and_stops_everything_on_sigterm(
    start_up: Callable[[Path], Up], tmp_path: Path
) -> None:
    up = start_up(tmp_path / "data")
    children = up.children()
    names = {child.name() for child in children}

    token = login(up.url)
    listed = campaigns(up.url, token)
    printed = wait_until(lambda: "Press Ctrl-C" in up.output() and up.output(), 10, "the banner")
    secret_file = up.data_dir / "secret_key"

    assert listed.status_code == 200 and len(listed.json()) >= 5
    assert up.url in printed
    for email in ("alice@acme.example", "bob@acme.example", "carol@globex.example"):
        assert email in printed
    assert "pulse-demo" in printed
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert any("redis-server" in name for name in names), names
    assert len(children) >= 3  # redis-server, server, worker

    assert up.stop(signal.SIGTERM) == 0
    assert_all_gone(children)


def test_second_start_reuses_the_data_and_the_secret_key(
    start_up: Callable[[Path], Up], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    first = start_up(data_dir)
    token = login(first.url)
    secret = (data_dir / "secret_key").read_text()
    assert "demo data loaded" in first.output()
    assert first.stop() == 0

    second = start_up(data_dir)

    assert (data_dir / "secret_key").read_text() == secret
    assert "demo data loaded" not in second.output()
    assert "using the existing data" in second.output()
    assert campaigns(second.url, token).status_code == 200  # same key: old tokens still valid
    assert second.stop(signal.SIGINT) == 0


@pytest.mark.faults
def test_a_killed_server_is_restarted(start_up: Callable[[Path], Up], tmp_path: Path) -> None:
    up = start_up(tmp_path / "data")
    server = up.child("server")

    server.kill()
    server.wait(timeout=10)
    restarted = wait_until(
        lambda: next((c for c in up.children() if c.cmdline()[-1:] == ["server"]), None),
        30,
        "a new server process",
    )
    wait_ready(up.url, START_TIMEOUT, up.process)

    assert restarted.pid != server.pid
    assert "restarting the server" in up.output()
    assert up.stop() == 0


@pytest.mark.faults
def test_a_killed_supervisor_leaves_no_child_behind(
    start_up: Callable[[Path], Up], tmp_path: Path
) -> None:
    up = start_up(tmp_path / "data")
    children = up.children()

    up.process.kill9()

    assert_all_gone(children)
