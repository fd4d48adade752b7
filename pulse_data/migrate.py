"""Apply the Alembic migrations to a database, from sync code (the CLI) or from async code."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from pulse_core.config import async_database_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any fixed number: PostgreSQL advisory lock that makes concurrent upgrades wait for each other.
_UPGRADE_LOCK_KEY = 7_140_251


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
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade, alembic_config(url), revision)
    finally:
        await engine.dispose()


def upgrade_database(url: str, revision: str = "head") -> None:
    """Blocking form of `upgrade_database_async`; also safe to call from a thread running a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(upgrade_database_async(url, revision))
        return
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(upgrade_database_async(url, revision))
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run, name="pulse-db-upgrade")
    worker.start()
    worker.join()
    if errors:
        raise errors[0]
