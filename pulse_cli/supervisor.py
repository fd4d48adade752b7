"""`pulse up`: Redis, the database, the server, a worker and the desktop app on one machine."""

from __future__ import annotations

import importlib.util
import math
import os
import signal
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType

from pulse_cli import bootstrap, console
from pulse_cli.children import Child, CrashLoopError, pulse_command, stop_all
from pulse_cli.datadir import load_or_create_secret, locked_data_dir, prepare_data_dir
from pulse_cli.embedded_redis import EmbeddedRedis
from pulse_cli.network import ensure_port_free, is_ready, server_url
from pulse_cli.process import WaitTimeoutError, wait_until
from pulse_core.config import Settings

DEMO_PASSWORD = "pulse-demo"
DEMO_USERS = (
    ("alice@acme.example", "Acme Outdoor", "admin"),
    ("bob@acme.example", "Acme Outdoor", "manager"),
    ("dave@acme.example", "Acme Outdoor", "viewer"),
    ("carol@globex.example", "Globex Foods", "admin"),
)
READY_TIMEOUT_SECONDS = 90.0
TICK_SECONDS = 0.2


class SupervisorError(RuntimeError):
    """`pulse up` cannot go on; the message says why and what to do."""


class StopRequested(BaseException):
    """SIGINT or SIGTERM arrived: stop everything and exit 0."""


def run_up(settings: Settings, *, headless: bool, demo_members: int) -> int:
    """Run everything until a signal, a closed desktop window or a crash loop; the exit code."""
    code = 0
    try:
        with _stop_on_signals() as signals, ExitStack() as stack:
            data_dir = prepare_data_dir(settings.data_dir)
            stack.enter_context(locked_data_dir(data_dir))
            ensure_port_free(settings.host, settings.port)
            env, redis = _prepare_backend(settings, data_dir, demo_members, stack)
            supervisor = Supervisor(settings, env, data_dir, headless=headless, redis=redis)
            try:
                code = supervisor.run()
            finally:
                signals.stopping = True
                console.info("stopping")
                supervisor.stop()
    except StopRequested:
        pass
    console.info("stopped")
    return code


def _prepare_backend(
    settings: Settings, data_dir: Path, demo_members: int, stack: ExitStack
) -> tuple[dict[str, str], EmbeddedRedis | None]:
    """Secret, Redis and a migrated, seeded database: the environment of server and worker,
    and the embedded Redis (None when PULSE_REDIS_URL names another)."""
    secret = settings.secret_key or load_or_create_secret(data_dir)
    redis_url = settings.redis_url
    redis = None
    if redis_url is None:
        redis = stack.enter_context(EmbeddedRedis(data_dir / "redis"))
        redis_url = redis.url
        console.info(f"embedded Redis is running (log: {redis.log_path})")
    database_url = settings.effective_database_url
    console.info(f"preparing the database {bootstrap.display_url(database_url)}")
    bootstrap.upgrade(database_url)
    if bootstrap.seed_demo(database_url, demo_members):
        console.info(f"demo data loaded ({demo_members:,} members)")
    else:
        console.info(f"using the existing data in {data_dir}")
    env = {
        **os.environ,
        "PULSE_DEMO": "1",
        "PULSE_DATA_DIR": str(data_dir),
        "PULSE_DATABASE_URL": database_url,
        "PULSE_REDIS_URL": redis_url,
        "PULSE_SECRET_KEY": secret,
        "PULSE_HOST": settings.host,
        "PULSE_PORT": str(settings.port),
        "PYTHONUNBUFFERED": "1",
    }
    if settings.smtp_url is None and settings.mail_dir is None:
        env["PULSE_MAIL_DIR"] = str(data_dir / "mail")  # emails a newcomer can open
    return env, redis


class Supervisor:
    """Starts the server and a worker, restarts them (and the embedded Redis) when they die,
    and stops them all."""

    def __init__(
        self,
        settings: Settings,
        env: Mapping[str, str],
        data_dir: Path,
        *,
        headless: bool,
        redis: EmbeddedRedis | None = None,
    ) -> None:
        self.url = server_url(settings.host, settings.port)
        self.data_dir = data_dir
        self.mail = (
            f"written to {env['PULSE_MAIL_DIR']}"
            if "PULSE_SMTP_URL" not in env and env.get("PULSE_MAIL_DIR")
            else "sent through PULSE_SMTP_URL"
        )
        self.headless = headless
        self.redis = redis
        self.server = Child("server", pulse_command("server"), env)
        # arq logs two lines per job at "info" and the demo runs several jobs a second: this
        # worker logs from "warning" unless PULSE_LOG_LEVEL says otherwise.
        quiet = {"PULSE_LOG_LEVEL": "warning", **env}
        self.worker = Child("worker", pulse_command("worker"), quiet)
        self.desktop: Child | None = None

    def run(self) -> int:
        try:
            self.server.start()
            self.worker.start()
            self._wait_until_ready()
            self._announce()
            if not self.headless:
                self._start_desktop()
            return self._watch()
        except CrashLoopError as exc:
            raise SupervisorError(str(exc)) from exc

    def stop(self) -> None:
        """Stop the desktop app first, then the server and the worker."""
        stop_all([c for c in (self.desktop, self.server, self.worker) if c is not None])

    def _tick(self) -> None:
        now = time.monotonic()
        if self.redis is not None:
            self.redis.check(now)
        self.server.check(now)
        self.worker.check(now)

    def _wait_until_ready(self) -> None:
        """Until /readyz answers 200, restarting whatever dies meanwhile."""

        def ready() -> bool:
            if is_ready(self.url):
                return True
            self._tick()
            return False

        try:
            wait_until(ready, READY_TIMEOUT_SECONDS, f"{self.url}/readyz", interval=TICK_SECONDS)
        except WaitTimeoutError:
            raise SupervisorError(
                f"the server did not answer {self.url}/readyz within "
                f"{READY_TIMEOUT_SECONDS:.0f} s; its log is above"
            ) from None

    def _announce(self) -> None:
        lines = [
            f"Campaign Pulse is running at {self.url}",
            "",
            f"Demo logins (password: {DEMO_PASSWORD}):",
            *(f"  {email:<22}{marketer:<14}{role}" for email, marketer, role in DEMO_USERS),
            "",
            f"Data directory: {self.data_dir}",
            f"Emails (to users who turn them on): {self.mail}",
            "Press Ctrl-C to stop.",
        ]
        console.out.print("\n".join(lines), markup=False)

    def _start_desktop(self) -> None:
        reason = desktop_unavailable_reason()
        if reason is not None:
            console.warn(
                f"the desktop app cannot start here: {reason}. The server keeps running; "
                f"connect from another machine with: pulse desktop --server {self.url}"
            )
            return
        env = {**os.environ, "PULSE_PASSWORD": DEMO_PASSWORD}
        args = pulse_command("desktop", "--server", self.url, "--email", DEMO_USERS[0][0])
        self.desktop = Child("desktop app", args, env, restart=False)
        self.desktop.start()

    def _watch(self) -> int:
        """Keep everything running until the desktop app is closed (headless: until a signal)."""
        wait_until(
            self._desktop_closed, math.inf, "the desktop app to close", interval=TICK_SECONDS
        )
        return 0

    def _desktop_closed(self) -> bool:
        self._tick()
        if self.desktop is not None and (code := self.desktop.returncode) is not None:
            self.desktop = None
            if code == 0:
                console.info("the desktop app was closed")
                return True
            console.warn(
                f"the desktop app exited with code {code} (its error is above). "
                f"The server keeps running at {self.url}; press Ctrl-C to stop."
            )
        return False


def desktop_unavailable_reason() -> str | None:
    """Why the desktop app cannot start on this machine, or None when it can."""
    if not _importable("desktop.main"):
        return "it is not part of this installation (no desktop.main module)"
    if not _importable("PySide6"):
        return "PySide6 is not installed (pip install -e .)"
    has_display = any(
        os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    )
    if sys.platform.startswith("linux") and not has_display:
        return "there is no display (DISPLAY is not set); use `pulse up --headless` on servers"
    return None


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


class _SignalHandler:
    """The first SIGINT/SIGTERM raises StopRequested; once stopping, more signals only log."""

    def __init__(self) -> None:
        self.stopping = False

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        if self.stopping:
            console.info("still stopping; children are killed after at most 10 s")
            return
        self.stopping = True
        console.info(f"received {signal.Signals(signum).name}")
        raise StopRequested


@contextmanager
def _stop_on_signals() -> Iterator[_SignalHandler]:
    handler = _SignalHandler()
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield handler
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
