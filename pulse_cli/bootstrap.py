"""Migrate the database and load the demo data, with a progress bar for a person to watch."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from alembic.util.exc import CommandError
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from pulse_cli import console

DEFAULT_DEMO_MEMBERS = 20_000

ProgressCallback = Callable[[str, int, int], None]


class DatabaseSetupError(RuntimeError):
    """Migrating, seeding or importing failed; the message names the database and what to check."""


DATABASE_ERRORS = (OSError, SQLAlchemyError)


def display_url(database_url: str) -> str:
    """The URL without its password, to show to a person."""
    return make_url(database_url).render_as_string(hide_password=True)


def upgrade(database_url: str) -> None:
    """Apply every migration the database does not have yet."""
    from pulse_data.migrate import upgrade_database

    try:
        upgrade_database(database_url)
    except (*DATABASE_ERRORS, CommandError) as exc:
        raise database_error("migrate", database_url, exc) from exc


def seed_demo(database_url: str, members: int = DEFAULT_DEMO_MEMBERS) -> bool:
    """Load the demo data unless it is there already; True when it was loaded now."""
    progress = progress_bar()
    task = progress.add_task("Loading the demo data", total=None)

    def report(step: str, done: int, total: int) -> None:
        progress.start()  # on the first report only: no empty bar when the data is there
        progress.update(task, description=step, completed=done, total=total)

    try:
        return asyncio.run(_seed(database_url, members, report))
    except DATABASE_ERRORS as exc:
        hint = "Run `pulse db upgrade` first if you have not."
        raise database_error("load the demo data into", database_url, exc, hint) from exc
    finally:
        progress.stop()


def progress_bar() -> Progress:
    """The progress bar of the `pulse` command, on stderr; shown from its first update on."""
    return Progress(
        TextColumn("{task.description:<42}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console.err,
    )


def database_error(
    action: str, database_url: str, exc: Exception, hint: str = ""
) -> DatabaseSetupError:
    cause = getattr(exc, "orig", None) or exc  # the driver's own words, without the SQL
    return DatabaseSetupError(
        f"could not {action} the database {display_url(database_url)}: {cause}. "
        f"Check PULSE_DATABASE_URL and that the database server is running. {hint}".rstrip()
    )


async def _seed(database_url: str, members: int, report: ProgressCallback) -> bool:
    from pulse_data.database import Database
    from pulse_data.seed import seed_demo as load_demo

    db = Database(database_url)
    try:
        loaded: bool = await load_demo(db, members=members, progress=report)
        return loaded
    finally:
        await db.dispose()
