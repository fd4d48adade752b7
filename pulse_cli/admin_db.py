"""What the administration commands share: the database of the deployment, and bad input.

Each command reads `--data-dir` / `PULSE_DATABASE_URL` like `pulse db upgrade`, so it works on
the database of a running `pulse up` as well as on a deployment's PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pulse_core.config import Settings
from pulse_data.database import Database

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
