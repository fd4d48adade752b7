"""Sessions end everywhere at once: logout, disabling (over REST or with `pulse user disable`)
close the user's open WebSockets with 4401 within 5 s, on this server and on another server
process, and REST answers 401; the watcher that does it survives database errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Column, MetaData, String, Table, text, update

from pulse_cli.main import main
from pulse_cli.process import pulse_command, wait_ready
from pulse_core.names import SessionEnd
from pulse_core.roles import Role
from pulse_data.accounts import end_message, start_session
from pulse_data.database import Database
from pulse_data.models import Marketer, User, UtcDateTime, utcnow
from server.session_watch import SessionWatcher
from tests.backend import ALICE, BOB, DEMO_PASSWORD, LiveBackend, free_port
from tests.faults.cluster import Child
from tests.test_accounts import bearer, closed_within
from tests.test_cli import clean_env, run_pulse
from tests.wsclient import WsClient

CLOSE_WITHIN_SECONDS = 5.0


def deployment_env(backend: LiveBackend, data_dir: Path) -> dict[str, str]:
    """What a process of the live backend's deployment is started with."""
    settings = backend.settings
    return clean_env(
        PULSE_DATABASE_URL=settings.database_url or "",
        PULSE_REDIS_URL=settings.redis_url or "",
        PULSE_SECRET_KEY=settings.secret_key or "",
        PULSE_DATA_DIR=str(data_dir),
    )


@pytest.fixture
def second_server(live_backend: LiveBackend, tmp_path: Path) -> Iterator[Child]:
    """A `pulse server` process of the live backend's deployment (same database and Redis)."""
    port = free_port()
    env = {**deployment_env(live_backend, tmp_path / "second"), "PULSE_PORT": str(port)}
    server = Child(
        "second-server", pulse_command("server"), env, tmp_path / "second-server.log", port=port
    )
    with server.start():
        wait_ready(server.url, 60, process=server)
        yield server


async def test_logout_ends_that_token_and_closes_its_websocket(live_backend: LiveBackend) -> None:
    leaving = live_backend.login(ALICE)["access_token"]
    staying = live_backend.login(ALICE)["access_token"]
    async with httpx.AsyncClient(base_url=live_backend.url) as http:
        ready = (await http.get("/readyz")).json()
        assert ready["checks"]["session_watch"] == "ok"
        async with (
            await WsClient.open(live_backend.ws_url, leaving) as gone,
            await WsClient.open(live_backend.ws_url, staying) as kept,
        ):
            out = await http.post("/api/auth/logout", headers=bearer(leaving))
            assert out.status_code == 204
            code, reason, seconds = await closed_within(gone, CLOSE_WITHIN_SECONDS)
            assert (code, reason) == (4401, end_message(SessionEnd.LOGOUT))
            print(f"logout: WebSocket closed {seconds:.2f} s after the answer")
            await kept.send(type="ping")
            assert await kept.recv() == {"type": "pong"}

        me = await http.get("/api/me", headers=bearer(leaving))
        assert me.status_code == 401 and "logged out" in me.json()["detail"]
        assert (await http.get("/api/me", headers=bearer(staying))).status_code == 200
    # A new WebSocket with the ended token is refused at once, saying why.
    again = await WsClient.open(live_backend.ws_url, leaving)
    code, reason, _ = await closed_within(again, CLOSE_WITHIN_SECONDS)
    assert (code, reason) == (4401, end_message(SessionEnd.LOGOUT))


async def test_disabling_closes_the_users_websocket_on_another_server_process(
    live_backend: LiveBackend,
    second_server: Child,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Disabled by an admin on one server, then with `pulse user disable` straight in the
    database: bob's WebSocket on the other server process is closed both times."""
    disabled = end_message(SessionEnd.DISABLED)
    bob_id = live_backend.login(BOB)["user"]["id"]
    async with (
        httpx.AsyncClient(base_url=live_backend.url) as here,
        httpx.AsyncClient(base_url=second_server.url) as there,
    ):

        async def login_bob() -> httpx.Response:
            return await there.post(
                "/api/auth/login", json={"email": BOB, "password": DEMO_PASSWORD}
            )

        async def refused_everywhere(token: str) -> None:
            for server in (here, there):
                answer = await server.get("/api/campaigns", headers=bearer(token))
                assert answer.status_code == 401 and answer.json()["detail"] == disabled

        alice = bearer(live_backend.token(ALICE))
        token = (await login_bob()).json()["access_token"]
        async with await WsClient.open(second_server.ws_url, token) as ws:
            change = await here.patch(
                f"/api/users/{bob_id}", json={"disabled": True}, headers=alice
            )
            assert change.status_code == 200 and change.json()["disabled"] is True
            code, reason, seconds = await closed_within(ws, CLOSE_WITHIN_SECONDS)
            assert (code, reason) == (4401, disabled)
            print(f"disabled over REST: WebSocket on the other process closed in {seconds:.2f} s")
        await refused_everywhere(token)
        assert (await login_bob()).status_code == 401

        enable = await here.patch(f"/api/users/{bob_id}", json={"disabled": False}, headers=alice)
        assert enable.status_code == 200 and enable.json()["disabled"] is False
        token = (await login_bob()).json()["access_token"]
        async with await WsClient.open(second_server.ws_url, token) as ws:
            env = deployment_env(live_backend, tmp_path / "cli")
            started = time.monotonic()
            closing = asyncio.create_task(closed_within(ws, 60))  # reads while the command runs
            result = await asyncio.to_thread(run_pulse, "user", "disable", BOB, env=env)
            ran = time.monotonic() - started
            assert result.returncode == 0, result.stderr
            code, reason, seconds = await closing
            assert (code, reason) == (4401, disabled)
            assert seconds - ran < CLOSE_WITHIN_SECONDS
            print(f"`pulse user disable` ran {ran:.2f} s; the WebSocket closed at {seconds:.2f} s")
        await refused_everywhere(token)
        assert (await login_bob()).status_code == 401

        monkeypatch.setenv("PULSE_DATABASE_URL", env["PULSE_DATABASE_URL"])
        assert await asyncio.to_thread(main, ["user", "enable", BOB]) == 0  # in this process
        assert (await login_bob()).status_code == 200


async def test_the_session_watcher_survives_database_errors_and_misses_nothing(
    db: Database,
) -> None:
    """While its look fails, the watcher reports it and retries; a session ended meanwhile is
    still seen once the database answers again."""
    async with db.writer() as session:
        marketer = Marketer(name="Watchers")
        session.add(marketer)
        await session.flush()
        user = User(
            marketer_id=marketer.id, email="w@example.com", password_hash="x", role=Role.ADMIN
        )
        session.add(user)
        await session.flush()
        session_id = (await start_session(session, user.id, 3600)).id
        await session.commit()
    watcher = SessionWatcher(db, interval=0.05)
    loop = asyncio.create_task(watcher.run())
    ended = watcher.watch(session_id)
    away: Table | None = None
    try:
        await until(lambda: watcher.health.looks > 0)
        assert watcher.problem() is None
        await rename_table(db, "auth_sessions", "auth_sessions_away")
        away = Table(
            "auth_sessions_away",
            MetaData(),
            Column("id", String),
            Column("ended_at", UtcDateTime),
            Column("end_reason", String),
        )
        await until(lambda: watcher.health.failures > 0)
        assert watcher.health.last_error is not None
        async with db.writer() as session:  # ended while the watcher cannot see
            await session.execute(
                update(away)
                .where(away.c.id == session_id)
                .values(ended_at=utcnow(), end_reason=SessionEnd.PASSWORD_CHANGED.value)
            )
            await session.commit()
        failures = watcher.health.failures
        await until(lambda: watcher.health.failures >= failures + 2)  # looked again, blind
        assert not ended.done()
        await rename_table(db, "auth_sessions_away", "auth_sessions")
        away = None
        async with asyncio.timeout(5):
            assert await ended == end_message(SessionEnd.PASSWORD_CHANGED)
        assert watcher.health.last_error is None and watcher.problem() is None
        assert watcher.sessions == 0
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        if away is not None:  # never leave the shared test database without the table
            await rename_table(db, "auth_sessions_away", "auth_sessions")


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def rename_table(db: Database, old: str, new: str) -> None:
    async with db.write_engine.begin() as connection:
        await connection.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))
