"""What an attacker probing a running server tries: guessing logins through many servers or
forged proxy headers, tokens in logs, malformed and oversized input, a readable database file."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from pulse_cli.embedded_redis import EmbeddedRedis
from pulse_core.config import Settings
from pulse_data.database import Database
from server.errors import safe
from tests.backend import ALICE, LiveBackend, ServerThread, free_port, wait_for
from tests.conftest import run_in_new_loop

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
MALLORY = "mallory@acme.example"  # nobody: every attempt is a wrong password
ATTEMPTS_PER_MINUTE = 3  # few: each wrong attempt costs a password hash check


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"login_attempts_per_minute": ATTEMPTS_PER_MINUTE})


@contextmanager
def another_server(settings: Settings, **changes: Any) -> Iterator[str]:
    """One more server of the same deployment (same database and Redis); yields its URL."""
    own = settings.model_copy(update={"port": free_port(), **changes})
    server = ServerThread(own)
    server.start()
    try:
        yield f"http://{own.host}:{own.port}"
    finally:
        server.stop()


def attempt(url: str, email: str, n: int, **headers: str) -> httpx.Response:
    body = {"email": email, "password": f"guess-{n}"}
    return httpx.post(f"{url}/api/auth/login", json=body, headers=headers, timeout=10)


def test_login_limit_holds_across_the_servers_of_a_deployment(live_backend: LiveBackend) -> None:
    attempts = live_backend.settings.login_attempts_per_minute
    with another_server(live_backend.settings) as other:
        servers = [live_backend.url, other]
        answers = [attempt(servers[n % 2], MALLORY, n) for n in range(attempts + 2)]

    assert [a.status_code for a in answers] == [401] * attempts + [429, 429]
    refused = answers[-1]
    wait = int(refused.headers["retry-after"])
    assert 1 <= wait <= 60
    assert refused.json() == {"detail": f"too many login attempts: try again in {wait} s"}
    assert live_backend.login(ALICE)["access_token"]  # another email from the same address


def test_login_works_and_stays_limited_while_redis_is_down(
    settings: Settings, demo_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with tempfile.TemporaryDirectory(prefix="pulse-redis-") as directory:
        redis = EmbeddedRedis(Path(directory))
        redis.start()
        own = settings.model_copy(
            update={"database_url": demo_database_url, "redis_url": redis.url, "port": free_port()}
        )
        server = ServerThread(own)
        server.start()
        url = f"http://{own.host}:{own.port}"
        try:
            redis.stop()
            caplog.set_level(logging.WARNING, logger="server.ratelimit")
            alice = httpx.post(
                f"{url}/api/auth/login", json={"email": ALICE, "password": "pulse-demo"}
            )
            limit = own.login_attempts_per_minute
            guesses = [attempt(url, MALLORY, n).status_code for n in range(limit + 1)]
        finally:
            server.stop()
            redis.stop()

    assert alice.status_code == 200, alice.text
    assert guesses == [401] * limit + [429]
    assert "login attempts are counted by this server alone" in caplog.text


def test_forwarded_for_is_believed_only_from_a_trusted_proxy(live_backend: LiveBackend) -> None:
    attempts = live_backend.settings.login_attempts_per_minute
    # No trusted proxy (the default): each guess claims another address, all count as one.
    direct = [
        attempt(live_backend.url, MALLORY, n, **{"X-Forwarded-For": f"203.0.113.{n}"})
        for n in range(attempts + 2)
    ]
    # Behind a trusted proxy (here the test itself, at 127.0.0.1), each real client counts alone.
    with another_server(live_backend.settings, trusted_proxies="127.0.0.1") as proxied:
        spread = [
            attempt(proxied, "eve@acme.example", n, **{"X-Forwarded-For": f"198.51.100.{n}"})
            for n in range(attempts + 2)
        ]
        one_client = [
            attempt(proxied, "eve@acme.example", n, **{"X-Forwarded-For": "198.51.100.200"})
            for n in range(attempts + 1)
        ]

    assert [a.status_code for a in direct] == [401] * attempts + [429] * 2
    assert [a.status_code for a in spread] == [401] * (attempts + 2)
    assert [a.status_code for a in one_client] == [401] * attempts + [429]


@SQLITE_ONLY
def test_a_websocket_token_in_the_query_never_reaches_the_log(live_backend: LiveBackend) -> None:
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(handler.format(record))  # type: ignore[method-assign]
    logger = logging.getLogger("uvicorn")
    error_logger = logging.getLogger("uvicorn.error")
    level = error_logger.level
    logger.addHandler(handler)
    error_logger.setLevel(logging.INFO)
    token = live_backend.token(ALICE)
    forged = "eyJhbGciOiJIUzI1NiJ9.forged-token-of-a-guesser.c2lnbmF0dXJl"
    try:
        with connect(f"{live_backend.ws_url}?access_token={token}") as ws:
            ws.send(json.dumps({"type": "ping"}))
            assert json.loads(ws.recv(timeout=5))["type"] == "pong"
        with (
            pytest.raises((InvalidStatus, ConnectionClosed)),
            connect(f"{live_backend.ws_url}?access_token={forged}") as ws,
        ):
            ws.recv(timeout=5)
        wait_for(lambda: sum("WebSocket /api/ws" in line for line in lines) >= 2)
    finally:
        logger.removeHandler(handler)
        error_logger.setLevel(level)

    assert not [line for line in lines if token in line or forged in line]
    assert any("access_token=[redacted]" in line for line in lines), lines


@SQLITE_ONLY
def test_bad_input_is_a_short_422_naming_the_field_never_a_500(live_backend: LiveBackend) -> None:
    login = f"{live_backend.url}/api/auth/login"
    near_limit = "x" * (live_backend.settings.max_body_bytes - 100)
    bodies = {
        "NaN": b'{"email": "alice@acme.example", "password": NaN}',
        "Infinity": b'{"email": Infinity, "password": "pulse-demo"}',
        "-Infinity": b'{"email": "alice@acme.example", "password": -Infinity}',
        "NaN alone": b"NaN",
        "lone surrogate": b'{"email": "alice@acme.example", "password": "\\ud800"}',
        "lone low surrogate": b'{"email": "\\udfff@acme.example", "password": "x"}',
        "surrogate as raw bytes": b'{"email": "\xed\xa0\x80@acme.example", "password": "x"}',
        "a field near the body limit": json.dumps({"email": near_limit, "password": "x"}).encode(),
    }
    answers = {
        name: httpx.post(login, content=body, headers={"Content-Type": "application/json"})
        for name, body in bodies.items()
    }
    with live_backend.client(ALICE) as alice:
        for name, query in {
            "NaN in the query": "topic=marketer:1:campaigns&after=NaN",
            "Infinity in the query": "topic=marketer:1:campaigns&after=Infinity",
            "lone surrogate in the query": "topic=marketer:1:campaigns&after=%ED%A0%80",
            "a 60 KB query value": "topic=" + "x" * 60_000,
        }.items():
            answers[name] = alice.get(f"/api/events?{query}")
    three_mb = json.dumps({"email": "x" * 3_000_000, "password": "x"})
    too_large = httpx.post(login, content=three_mb, headers={"Content-Type": "application/json"})

    for name, answer in answers.items():
        assert answer.status_code == 422, (name, answer.text[:300])
        assert len(answer.content) < 1000, (name, len(answer.content))
        detail = answer.json()["detail"]
        assert detail and all({"loc", "msg"} <= set(error) for error in detail), (name, detail)
        assert not any("input" in error for error in detail), (name, detail)
    assert answers["NaN"].json()["detail"][0]["loc"] == ["body", "password"]
    assert answers["a field near the body limit"].json()["detail"][0]["loc"] == ["body", "email"]
    assert answers["NaN in the query"].json()["detail"][0]["loc"] == ["query", "after"]
    assert too_large.status_code == 413
    assert len(too_large.content) < 1000


def test_error_details_are_short_and_always_encodable() -> None:
    detail = safe({"reason": "\ud800" * 10_000, "amount": float("nan"), ("a", 1): [1e400]})

    text = json.dumps(detail, allow_nan=False, ensure_ascii=False).encode("utf-8")

    assert len(text) < 1000
    assert detail["reason"].startswith("\\ud800")
    assert detail["amount"] == "nan"
    assert detail["('a', 1)"] == ["inf"]


def read_response(connection: socket.socket) -> tuple[bytes, bytes]:
    """The status line and body of one HTTP/1.1 response with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        received = connection.recv(65536)
        assert received, f"the connection closed before a response: {data!r}"
        data += received
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += connection.recv(65536)
    return head.split(b"\r\n")[0], body


def closed_by_server(connection: socket.socket) -> bool:
    try:
        return connection.recv(65536) == b""
    except ConnectionResetError:
        return True


@SQLITE_ONLY
def test_a_body_over_the_limit_is_refused_before_it_is_read(live_backend: LiveBackend) -> None:
    host, port = live_backend.settings.host, live_backend.settings.port
    limit = live_backend.settings.max_body_bytes
    request = "POST /api/auth/login HTTP/1.1\r\nHost: pulse\r\nContent-Type: application/json\r\n"
    # Announced as 8 MB: refused at once, though not one byte of it was sent.
    with socket.create_connection((host, port), timeout=10) as announced:
        announced.sendall(f"{request}Content-Length: {8 * 1024 * 1024}\r\n\r\n".encode())
        announced_status, announced_body = read_response(announced)
        announced_closed = closed_by_server(announced)
    # Chunked, no length given: refused once past the limit, and the rest is never read.
    chunk = b"x" * 65536
    with socket.create_connection((host, port), timeout=10) as chunked:
        chunked.sendall(f"{request}Transfer-Encoding: chunked\r\n\r\n".encode())
        for _ in range(limit // len(chunk) + 1):
            chunked.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        chunked_status, chunked_body = read_response(chunked)
        chunked_closed = closed_by_server(chunked)
    # A batch of 1,000 ad events with 100-character ids is well within the limit.
    events = [
        {
            "id": f"{n:0100d}",
            "offer_id": 1_000_000 + n,
            "kind": "banner_view",
            "at": "2026-12-01T12:00:00.000000+00:00",
        }
        for n in range(1000)
    ]
    batch = json.dumps({"events": events}).encode()
    ingested = httpx.post(
        f"{live_backend.url}/api/ingest/ad-events",
        content=batch,
        headers={"Content-Type": "application/json", "Authorization": "Bearer not-a-key"},
    )

    for status, body, closed in (
        (announced_status, announced_body, announced_closed),
        (chunked_status, chunked_body, chunked_closed),
    ):
        assert status.startswith(b"HTTP/1.1 413 "), status
        assert f"larger than {limit} bytes" in json.loads(body)["detail"]
        assert closed
    assert len(batch) < limit / 4  # about 200 KB
    assert ingested.status_code not in (413, 500), ingested.text


def test_the_sqlite_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
    upgraded = subprocess.run(
        [sys.executable, "-m", "pulse_cli", "db", "upgrade", "--data-dir", str(data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: os.umask(0o022),  # what most shells give: new files 0644
        check=False,
    )
    assert upgraded.returncode == 0, upgraded.stderr
    database_file = data_dir / "pulse.sqlite3"
    after_upgrade = database_file.stat().st_mode & 0o777
    database_file.chmod(0o644)  # as an earlier version left it

    async def write() -> dict[str, int]:
        db = Database(f"sqlite:///{database_file}")
        try:
            async with db.writer() as session:
                await session.execute(text("CREATE TABLE probe (x INTEGER)"))
                await session.commit()
            return {p.name: p.stat().st_mode & 0o777 for p in data_dir.glob("pulse.sqlite3*")}
        finally:
            await db.dispose()

    previous = os.umask(0o022)
    try:
        modes = run_in_new_loop(write)
    finally:
        os.umask(previous)

    assert after_upgrade == 0o600
    assert modes == {
        "pulse.sqlite3": 0o600,
        "pulse.sqlite3-wal": 0o600,
        "pulse.sqlite3-shm": 0o600,
    }
