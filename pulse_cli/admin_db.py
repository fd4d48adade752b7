"""What the administration commands share: the database of the deployment, and bad input.

Each command reads `--data-dir` / `PULSE_DATABASE_URL` like `pulse db upgrade`, so it works on
the database of a running `pulse up` as well as on a deployment's PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

from pulse_core.config import Settings
from pulse_data.database import Database
from pulse_data.migrate import require_latest_schema

T = TypeVar("T")


class CommandError(Exception):
    """Bad input to a command: `pulse` prints the message on one line and exits with 2."""


def database_url(args: argparse.Namespace) -> str:
    overrides = {k: getattr(args, k) for k in ("data_dir",) if hasattr(args, k)}
    # Administration signs nothing, so it needs no PULSE_SECRET_KEY.
    return Settings(**overrides, demo=True).effective_database_url


def with_database(args: argparse.Namespace, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run `work` with the deployment's database, then close it."""

    async def run() -> T:
        db = Database(database_url(args))
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


def run_on_database(
    args: argparse.Namespace,
    work: Callable[[Database], Awaitable[T]],
    refusals: tuple[type[Exception], ...],
) -> T:
    """Run `work` on the deployment's database, whose schema must be the latest.

    A refusal of the domain (one of `refusals`) and a database that does not answer become a
    `CommandError`: one line that says what to fix.
    """
    require_latest_schema(database_url(args))  # else: one line saying to run `pulse db upgrade`
    try:
        return with_database(args, work)
    except refusals as exc:
        raise CommandError(str(exc)) from None
    except (DBAPIError, OSError) as exc:
        cause = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise CommandError(
            f"the database did not answer as expected ({cause}): check PULSE_DATABASE_URL "
            "(or --data-dir), and run `pulse db upgrade` once"
        ) from None
