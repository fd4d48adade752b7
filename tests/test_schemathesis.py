"""Schemathesis with the server's own OpenAPI schema against a running server: no input makes
a 500, logged in or not.

Generated requests (valid and invalid bodies, paths and query strings) hit a real server on a
seeded SQLite database, with Alice's token and without one. The number of examples per
operation is bounded so that this stays well under a minute.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from sqlalchemy.engine import make_url

from pulse_cli.embedded_redis import EmbeddedRedis
from pulse_core.config import Settings
from pulse_data.passwords import hash_password
from tests.backend import ALICE, DEMO_PASSWORD, LiveBackend, ServerThread, free_port
from tests.conftest import TEST_SECRET
from tests.demo_copies import DemoCopies

MAX_EXAMPLES = 8  # per operation; the fuzzing is broad (every operation) rather than deep


@pytest.fixture(scope="module")
def api_backend(redis_server: EmbeddedRedis, demo_copies: DemoCopies) -> Iterator[LiveBackend]:
    """One server on just-seeded demo data (a copy of the test process's template) for every
    operation of the schema."""
    with tempfile.TemporaryDirectory(prefix="pulse-schema-") as directory:
        database = Path(directory) / "pulse.sqlite3"
        demo_copies.sqlite(database)
        backend_settings = Settings(
            data_dir=Path(directory) / "data",
            database_url=f"sqlite+aiosqlite:///{database}",
            redis_url=redis_server.url,
            secret_key=TEST_SECRET,
            port=free_port(),
            # Schemathesis tries many logins; the limit itself is tested elsewhere.
            login_attempts_per_minute=1_000_000,
        )
        backend = LiveBackend(settings=backend_settings, server=ServerThread(backend_settings))
        backend.server.start()
        try:
            yield backend
        finally:
            backend.server.stop()


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One client (and its open connection) for the token checks of every case."""
    with httpx.Client() as client:
        yield client


def _openapi_document() -> dict[str, Any]:
    """The schema the server serves at /openapi.json (building the app opens nothing)."""
    from server.app import create_app

    app = create_app(Settings(secret_key=TEST_SECRET, redis_url="redis://127.0.0.1:1/0"))
    return app.openapi()


schema = schemathesis.openapi.from_dict(_openapi_document())


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_input_makes_a_server_error(
    case: Any, api_backend: LiveBackend, http: httpx.Client
) -> None:
    headers = {"Authorization": f"Bearer {_alices_token(api_backend, http)}"}
    case.call_and_validate(base_url=api_backend.url, headers=headers, checks=[not_a_server_error])


def _alices_token(backend: LiveBackend, http: httpx.Client) -> str:
    """A token of Alice (an admin) that works now.

    Generated requests may log her out or give her another password (she administers her
    users): then her password is set back and she logs in again, so every case runs logged in.
    """
    token = backend.tokens.get(ALICE)
    if token and http.get(f"{backend.url}/api/me", headers=_bearer(token)).status_code == 200:
        return token
    backend.tokens.pop(ALICE, None)
    with sqlite3.connect(make_url(backend.settings.database_url or "").database or "") as db:
        db.execute(
            "UPDATE users SET password_hash = ?, disabled = 0 WHERE email = ?",
            (hash_password(DEMO_PASSWORD), ALICE),
        )
    return backend.token(ALICE)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES // 3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_input_makes_a_server_error_without_a_token(case: Any, api_backend: LiveBackend) -> None:
    case.call_and_validate(base_url=api_backend.url, checks=[not_a_server_error])
