"""Apply the Alembic migrations to a database, and tell whether its schema is the latest."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from pulse_core.config import async_database_url
from pulse_data.database import prepare_sqlite_file

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any fixed number: PostgreSQL advisory lock that makes concurrent upgrades wait for each other.
_UPGRADE_LOCK_KEY = 7_140_251
UPGRADE_HINT = "run `pulse db upgrade`"
_PLAIN_HINT = "run pulse db upgrade"

T = TypeVar("T")


class SchemaError(RuntimeError):
    """The database's schema is not the one this version needs; the message says what to do."""


class DatabaseNotAnswering(RuntimeError):
    """The database could not be asked for its schema; the message names it and the cause."""


@dataclass(frozen=True, slots=True)
class SchemaState:
    """The database's revision (None: no schema at all) and the one this version needs."""

    current: str | None
    latest: str

    @property
    def is_latest(self) -> bool:
        return self.current == self.latest

    @property
    def is_known(self) -> bool:
        """False for a revision this version has no migration for (a newer version's)."""
        return self.current is None or self.current in _known_revisions()

    def summary(self) -> str:
        """What `pulse db current` prints: `0002 (latest)`, `0001 (behind: ...)`, ..."""
        if self.current is None:
            return f"none (empty database; {_PLAIN_HINT})"
        if self.is_latest:
            return f"{self.current} (latest)"
        if not self.is_known:
            return f"{self.current} (unknown to this version, which needs {self.latest})"
        return f"{self.current} (behind: the latest is {self.latest}; {_PLAIN_HINT})"

    def problem(self) -> str | None:
        """None when the schema is the latest, else one line saying what to do."""
        if self.is_latest:
            return None
        if self.current is None:
            return f"database has no schema yet: {UPGRADE_HINT}"
        if not self.is_known:
            return (
                f"database schema is at revision {self.current}, which this version of Campaign "
                f"Pulse does not know (it needs {self.latest}): run the version that migrated it"
            )
        return (
            f"database schema is at revision {self.current}, this version needs {self.latest}: "
            f"{UPGRADE_HINT}"
        )


@functools.cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


@functools.cache
def latest_revision() -> str:
    """The head revision of the migrations this code ships."""
    head = _script().get_current_head()
    assert head is not None, "no migrations"
    return head


@functools.cache
def _known_revisions() -> frozenset[str]:
    return frozenset(script.revision for script in _script().walk_revisions())


def current_revision(connection: Connection) -> str | None:
    """The revision stamped in the database (None when it has no `alembic_version`)."""
    return MigrationContext.configure(connection).get_current_revision()


async def schema_state_of(engine: AsyncEngine) -> SchemaState:
    """The schema state of the database behind an open engine (readiness checks use this)."""
    async with engine.connect() as connection:
        current = await connection.run_sync(current_revision)
    return SchemaState(current, latest_revision())


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration built in code: no alembic.ini is needed."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if url is not None:
        config.set_main_option("sqlalchemy.url", async_database_url(url).replace("%", "%%"))
    return config


def _upgrade(connection: Connection, config: Config, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK_KEY})
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade_database_async(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` to `revision`; does nothing when it is already there."""
    url = async_database_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        prepare_sqlite_file(parsed.database)
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade, alembic_config(url), revision)
    finally:
        await engine.dispose()


def upgrade_database(url: str, revision: str = "head") -> None:
    """Blocking form of `upgrade_database_async`; also safe to call from a thread running a loop."""
    _run_blocking(lambda: upgrade_database_async(url, revision))


async def schema_state_async(url: str) -> SchemaState:
    """The schema state of the database at `url`. A SQLite file that does not exist is an
    empty database, and is not created.

    Raises `DatabaseNotAnswering` when the database cannot be reached.
    """
    url = async_database_url(url)
    if _missing_sqlite_file(url):
        return SchemaState(None, latest_revision())
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        return await schema_state_of(engine)
    except (OSError, SQLAlchemyError) as exc:
        cause = getattr(exc, "orig", None) or exc  # the driver's own words, without the SQL
        raise DatabaseNotAnswering(
            f"cannot read the schema of the database {display_url(url)}: {cause}. Check "
            "PULSE_DATABASE_URL and that the database server is running"
        ) from exc
    finally:
        await engine.dispose()


def schema_state(url: str) -> SchemaState:
    """Blocking form of `schema_state_async`."""
    return _run_blocking(lambda: schema_state_async(url))


def require_latest_schema(url: str) -> None:
    """Raise `SchemaError` (saying to run `pulse db upgrade`) unless the schema is the latest.

    `pulse server` and `pulse worker` call this before they start.
    """
    problem = schema_state(url).problem()
    if problem is not None:
        raise SchemaError(f"{problem} (database: {display_url(url)})")


def _missing_sqlite_file(url: str) -> bool:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return False
    return not Path(parsed.database).is_file()


def display_url(url: str) -> str:
    """The URL without its password, to show to a person."""
    return make_url(url).render_as_string(hide_password=True)


def _run_blocking(coroutine_fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to its end, in a thread of its own when this thread runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine_fn())
    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(asyncio.run(coroutine_fn()))
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run, name="pulse-db-migrate")
    worker.start()
    worker.join()
    if errors:
        raise errors[0]
    return results[0]
