"""Fixtures on real parts: an embedded redis-server, SQLite files and (when given) PostgreSQL."""

from __future__ import annotations

import asyncio
import functools
import os
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
import redis
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from argon2 import PasswordHasher
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from pulse_cli.embedded_redis import EmbeddedRedis
from pulse_core.config import Settings
from pulse_data.database import Database
from pulse_data.migrate import alembic_config, upgrade_database_async
from pulse_data.models import Base
from tests.backend import LiveBackend, ServerThread, WorkerThread, free_port
from tests.demo_copies import DemoCopies

T = TypeVar("T")
DEMO_MEMBERS = 2_000

POSTGRES_URL = os.environ.get("PULSE_TEST_POSTGRES_URL")
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgres",
        id="postgres",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(not POSTGRES_URL, reason="PULSE_TEST_POSTGRES_URL is not set"),
        ],
    ),
]


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """Passwords hashed and checked in this test process cost microseconds, not 0.3 s of both
    cores: still argon2id, with the smallest work factors (argon2-cffi's "cheapest" profile, for
    tests). A hash carries its own parameters, so these verify anywhere; `pulse` commands run as
    processes hash with the product's parameters."""
    import pulse_data.passwords

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            pulse_data.passwords,
            "_hasher",
            PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
        )
        pulse_data.passwords._dummy_hash.cache_clear()
        yield
    pulse_data.passwords._dummy_hash.cache_clear()


@pytest.fixture(scope="session", autouse=True)
def one_tls_context_for_http_clients() -> Iterator[None]:
    """Every httpx client of this test process (`httpx.get`, `LiveBackend.client`, the desktop's)
    with default TLS settings gets the one context made for the CA bundle in use (certifi's, or
    SSL_CERT_FILE's or SSL_CERT_DIR's) instead of loading the bundle again: 40-130 ms a client
    here, and the tests make thousands. A context or client certificate given is passed through
    unchanged, and another SSL_CERT_FILE (a test's own CA) gets a context of its own."""
    import httpx._transports.default as transports

    make_context = transports.create_ssl_context
    contexts: dict[tuple[str | None, str | None], Any] = {}

    def create_ssl_context(verify: Any = True, cert: Any = None, trust_env: bool = True) -> Any:
        if verify is not True or cert is not None or not trust_env:
            return make_context(verify=verify, cert=cert, trust_env=trust_env)
        bundle = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
        if bundle not in contexts:
            contexts[bundle] = make_context()
        return contexts[bundle]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(transports, "create_ssl_context", create_ssl_context)
        yield


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    # A short directory: unix socket paths are limited to ~100 bytes.
    with tempfile.TemporaryDirectory(prefix="pulse-redis-") as directory:
        server = EmbeddedRedis(Path(directory))
        server.start()
        yield server
        server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    """The embedded Redis, emptied before each test."""
    redis.Redis.from_url(redis_server.url).flushall()
    return redis_server.url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of this test process alone, on the server of PULSE_TEST_POSTGRES_URL.

    Test processes running side by side (pytest -n) or two test runs on one server never
    share a database, so one's schema changes cannot pull the tables from under another.
    """
    assert POSTGRES_URL is not None
    name = f"pulse_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{uuid.uuid4().hex[:8]}"
    admin = make_url(POSTGRES_URL).set(drivername="postgresql")

    async def run(statement: str) -> None:
        connection = await asyncpg.connect(admin.render_as_string(hide_password=False))
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    run_in_new_loop(lambda: run(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        run_in_new_loop(lambda: run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def run_on_database(url: str, work: Callable[[Connection], None]) -> None:
    """Run `work` on a connection to the database at `url`, in one transaction."""

    async def run() -> None:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(work)
        finally:
            await engine.dispose()

    run_in_new_loop(run)


def drop_everything(connection: Connection) -> None:
    Base.metadata.drop_all(connection)
    connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")


@pytest.fixture
def empty_database(database_url: str) -> Iterator[str]:
    """The test database with no schema at all (a SQLite file that does not exist yet)."""
    is_sqlite = make_url(database_url).get_backend_name() == "sqlite"
    if not is_sqlite:
        run_on_database(database_url, drop_everything)
    yield database_url
    if not is_sqlite:
        run_on_database(database_url, drop_everything)


@contextmanager
def running_backend(settings: Settings) -> Iterator[LiveBackend]:
    """The real server and a real worker on the database of `settings`, stopped afterwards."""
    backend = LiveBackend(settings=settings, server=ServerThread(settings))
    backend.server.start()
    backend.worker = WorkerThread(settings)
    backend.worker.start()
    try:
        yield backend
    finally:
        backend.worker.stop()
        backend.server.stop()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file, and PostgreSQL when PULSE_TEST_POSTGRES_URL is set."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'pulse.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def build_latest_schema(connection: Connection) -> None:
    """Empty the database and build the models' schema, stamped as the latest revision.

    Faster than running the migrations; test_migrations.py proves both build the same schema.
    """
    Base.metadata.drop_all(connection)
    connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    Base.metadata.create_all(connection)
    MigrationContext.configure(connection).stamp(_migrations(), "head")


@functools.cache
def _migrations() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """An empty database with the latest schema."""
    database = Database(database_url)
    async with database.write_engine.begin() as connection:
        await connection.run_sync(build_latest_schema)
    yield database
    await database.dispose()


@pytest.fixture
def settings(database_url: str, redis_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        redis_url=redis_url,
        secret_key=TEST_SECRET,
        offer_activation_delay_seconds=3600,
        populate_retry_seconds=0.05,
    )


def run_in_new_loop(coroutine_factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion on a fresh event loop in another thread."""
    result: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coroutine_factory()))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


async def _fresh_demo_database(url: str, members: int) -> None:
    from pulse_data.seed import seed_demo

    await upgrade_database_async(url)  # a new database: migrated as `pulse up` does it
    database = Database(url)
    try:
        await seed_demo(database, members=members)
    finally:
        await database.dispose()


@pytest.fixture(scope="session")
def demo_copies(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[DemoCopies]:
    if POSTGRES_URL:
        # The PostgreSQL template is dropped through this process's database: keep it until then.
        request.getfixturevalue("postgres_url")
    copies = DemoCopies(
        tmp_path_factory.mktemp("demo-template"),
        lambda url: _fresh_demo_database(url, DEMO_MEMBERS),
        run_in_new_loop,
    )
    yield copies
    copies.close()


@pytest.fixture
def demo_database_url(settings: Settings, demo_copies: DemoCopies) -> Iterator[str]:
    """A database of its own holding just-seeded demo data (2,000 members)."""
    url = settings.database_url or ""
    if make_url(url).get_backend_name() == "sqlite":
        demo_copies.sqlite(Path(make_url(url).database or ""))
        yield url
        return
    copy_url, drop = demo_copies.postgres(url)
    try:
        yield copy_url
    finally:
        drop()


@pytest.fixture
def live_backend(settings: Settings, demo_database_url: str) -> Iterator[LiveBackend]:
    """The real server and a real worker on just-seeded demo data (2,000 members)."""
    settings = settings.model_copy(update={"port": free_port(), "database_url": demo_database_url})
    with running_backend(settings) as backend:
        yield backend


@pytest.fixture(scope="module", params=BACKENDS)
def shared_backend(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    demo_copies: DemoCopies,
) -> Iterator[LiveBackend]:
    """The real server on just-seeded demo data, shared by the tests of one module (one per
    database backend and test process), for tests that leave everything as they found it:
    refusals, reads, bad input, their own sessions and connections. A test that changes what
    others see (launches, archives, passwords, disabled users, lockouts, a stopped server) takes
    `live_backend` instead.

    No worker runs, so nothing changes the demo data behind the tests' backs; the server has a
    Redis of its own (the `redis_url` fixture empties the shared one before each test) and a
    login limit no test reaches (the limit is tested on `live_backend`).
    """
    directory = tmp_path_factory.mktemp("shared-backend")
    with tempfile.TemporaryDirectory(prefix="pulse-redis-") as redis_directory:
        own_redis = EmbeddedRedis(Path(redis_directory))
        own_redis.start()
        drop: Callable[[], None] | None = None
        if request.param == "sqlite":
            database_url = f"sqlite+aiosqlite:///{directory / 'pulse.sqlite3'}"
            demo_copies.sqlite(directory / "pulse.sqlite3")
        else:
            database_url, drop = demo_copies.postgres(request.getfixturevalue("postgres_url"))
        settings = Settings(
            data_dir=directory / "data",
            database_url=database_url,
            redis_url=own_redis.url,
            secret_key=TEST_SECRET,
            port=free_port(),
            offer_activation_delay_seconds=3600,
            login_attempts_per_minute=1_000_000,
        )
        backend = LiveBackend(settings=settings, server=ServerThread(settings))
        backend.server.start()
        try:
            yield backend
        finally:
            backend.server.stop()
            if drop is not None:
                drop()
            own_redis.stop()
