"""The Alembic migrations build exactly the schema of the models, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from pulse_data.migrate import alembic_config, upgrade_database, upgrade_database_async
from pulse_data.models import Base


def _differences(connection: Connection) -> tuple[str | None, list[Any]]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return context.get_current_revision(), compare_metadata(context, Base.metadata)


async def _inspect(url: str) -> tuple[str | None, list[Any]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_differences)
    finally:
        await engine.dispose()


HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


async def test_upgrade_builds_the_schema_of_the_models(empty_database: str) -> None:
    await upgrade_database_async(empty_database)
    revision, differences = await _inspect(empty_database)
    assert revision == HEAD
    assert differences == []


async def test_upgrading_twice_changes_nothing(empty_database: str) -> None:
    await upgrade_database_async(empty_database)
    await upgrade_database_async(empty_database)
    assert await _inspect(empty_database) == (HEAD, [])


def test_blocking_upgrade_creates_the_sqlite_file_and_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "pulse.sqlite3"
    upgrade_database(f"sqlite:///{path}")
    assert path.is_file()


async def test_blocking_upgrade_also_works_from_inside_a_running_loop(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'pulse.sqlite3'}"
    upgrade_database(url)
    assert await _inspect(url) == (HEAD, [])
