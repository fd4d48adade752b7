"""A live backend for tests: the real app under uvicorn and a real arq worker, each in a thread.

Each runs its own asyncio loop, as it would in its own process, and talks to the others only
through the real database, the real Redis and real sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from pulse_cli.process import WaitTimeoutError, wait_ready, wait_until
from pulse_cli.process import free_port as free_port  # tests import it from here
from pulse_core.config import Settings
from server.main import uvicorn_config

DEMO_PASSWORD = "pulse-demo"
ALICE = "alice@acme.example"
BOB = "bob@acme.example"
CAROL = "carol@globex.example"
DAVE = "dave@acme.example"  # Acme Outdoor's viewer


def read_unverified(token: str) -> dict[str, Any]:
    """The claims of a login token, read without checking it (tests only)."""
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll until `condition()` is truthy; return its value or fail after `timeout` seconds."""
    return wait_until(condition, timeout, "a condition", interval=interval)


def parse_metrics(text: str) -> dict[str, float]:
    """A Prometheus text page as {sample: value}; a labelled sample is keyed
    `name{label="value",...}` with its labels in name order (`pulse_topics`,
    `pulse_login_attempts_total{outcome="success"}`)."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


class ServerThread:
    """uvicorn serving the app on a fixed port in a thread of its own."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.server = uvicorn.Server(uvicorn_config(self.settings))
        self.server.config.log_level = "warning"
        self.thread = threading.Thread(target=self.server.run, name="test-server", daemon=True)
        self.thread.start()
        wait_ready(f"http://{self.settings.host}:{self.settings.port}", timeout=20)

    def stop(self) -> None:
        if self.server is None or self.thread is None:
            return
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.server = None


class WorkerThread:
    """A real arq worker in a thread of its own."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop: asyncio.AbstractEventLoop | None = None
        self.worker: Any = None
        self.thread: threading.Thread | None = None
        self.started = threading.Event()

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="test-worker", daemon=True)
        self.thread.start()
        if not self.started.wait(20):
            raise WaitTimeoutError("timed out after 20 s waiting for the test worker to start")

    def _run(self) -> None:
        from workers.settings import create_worker

        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self.worker = create_worker(self.settings, handle_signals=False)
            self.started.set()
            try:
                await self.worker.async_run()
            except asyncio.CancelledError:
                pass
            finally:
                # Jobs cut short by the stop end cancelled; a later worker retries them.
                with contextlib.suppress(asyncio.CancelledError):
                    await self.worker.close()

        asyncio.run(main())

    def stop(self) -> None:
        if self.loop is None or self.thread is None:
            return
        main_task = self.worker.main_task

        def cancel() -> None:
            if main_task is not None:
                main_task.cancel()

        self.loop.call_soon_threadsafe(cancel)
        self.thread.join(timeout=20)
        self.loop = None


@dataclass
class LiveBackend:
    """A running server (and worker) on demo data; `url` is the server's base URL."""

    settings: Settings
    server: ServerThread
    worker: WorkerThread | None = None
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.settings.host}:{self.settings.port}/api/ws"

    def restart_server(self) -> None:
        self.server.stop()
        self.server.start()

    def login(self, email: str, password: str = DEMO_PASSWORD) -> dict[str, Any]:
        response = httpx.post(
            f"{self.url}/api/auth/login", json={"email": email, "password": password}
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def token(self, email: str) -> str:
        if email not in self.tokens:
            self.tokens[email] = self.login(email)["access_token"]
        return self.tokens[email]

    def expired_token(self, email: str) -> str:
        """A token of the user's real session, correctly signed, that expired a few seconds ago."""
        return self.token_expiring_in(email, -5)

    def token_expiring_in(self, email: str, seconds: float) -> str:
        """A token of a new session of the user, correctly signed, that expires in `seconds`."""
        from server.security import issue_token

        login = self.login(email)
        principal = read_unverified(login["access_token"])
        return issue_token(
            self.settings.secret_key or "",
            user_id=login["user"]["id"],
            marketer_id=login["user"]["marketer_id"],
            email=email,
            session_id=principal["sid"],
            expires_at=datetime.now(UTC) + timedelta(seconds=seconds),
        )

    def client(self, email: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token(email)}"}
        )
