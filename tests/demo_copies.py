"""Fresh demo databases for each test, copied from one seeded template instead of re-seeded.

Seeding the demo data takes 1-2 s; copying it takes milliseconds: a SQLite file through the
SQLite backup API, a PostgreSQL database with `CREATE DATABASE ... TEMPLATE`. A template is
seeded again once it is `MAX_AGE` old, so every copy looks just seeded: the demo's first
wave of offer activations is minutes after seeding, and no test may see it come early.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from pulse_data import seed

MAX_AGE = 120.0
assert MAX_AGE < seed.ACTIVATION_WAVE_MINUTES * 60 / 2

Seeder = Callable[[str], Awaitable[None]]  # fills the empty database at a URL with demo data
Runner = Callable[[Callable[[], Coroutine[Any, Any, None]]], None]  # runs a coroutine to its end


def _admin_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _database_url(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


class DemoCopies:
    """Seeded templates (one per database server) and the per-test copies made from them."""

    def __init__(self, directory: Path, seeder: Seeder, run: Runner) -> None:
        self._directory = directory
        self._seeder = seeder
        self._run = run
        self._seeded_at: dict[str, float] = {}
        self._postgres_server: str | None = None
        # Of this test run alone: two runs against one server must not share a template.
        self._template = f"pulse_test_demo_{uuid.uuid4().hex[:12]}"

    def close(self) -> None:
        """Drop the PostgreSQL template, if one was made."""
        if self._postgres_server is not None:
            self._sql(self._postgres_server, f'DROP DATABASE IF EXISTS "{self._template}"')
            self._postgres_server = None

    # ---- SQLite -------------------------------------------------------------------------

    def sqlite(self, target: Path) -> None:
        """Write a just-seeded demo database to the SQLite file `target`."""
        template = self._directory / "demo-template.sqlite3"
        if self._stale("sqlite"):
            for leftover in self._directory.glob("demo-template.sqlite3*"):
                leftover.unlink()
            self._seed_now("sqlite", f"sqlite+aiosqlite:///{template}")
        source = sqlite3.connect(template)
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)
        finally:
            copy.close()
            source.close()

    # ---- PostgreSQL ---------------------------------------------------------------------

    def postgres(self, server_url: str) -> tuple[str, Callable[[], None]]:
        """A new database on the server of `server_url` holding just-seeded demo data.

        Returns its URL and a function that drops it.
        """
        template = self._template
        self._postgres_server = server_url
        if self._stale("postgres"):
            self._sql(server_url, f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
            self._sql(server_url, f'CREATE DATABASE "{template}"')
            self._seed_now("postgres", _database_url(server_url, template))
        name = f"pulse_test_{uuid.uuid4().hex[:12]}"
        self._sql(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')

        def drop() -> None:
            self._sql(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        return _database_url(server_url, name), drop

    # ---- internals ----------------------------------------------------------------------

    def _stale(self, key: str) -> bool:
        seeded = self._seeded_at.get(key)
        return seeded is None or time.monotonic() - seeded > MAX_AGE

    def _seed_now(self, key: str, url: str) -> None:
        started = time.monotonic()

        async def seed_it() -> None:
            await self._seeder(url)

        self._run(seed_it)
        self._seeded_at[key] = started

    def _sql(self, server_url: str, statement: str) -> None:
        async def execute() -> None:
            connection = await asyncpg.connect(_admin_url(server_url), timeout=10)
            try:
                await connection.execute(statement)
            finally:
                await connection.close()

        self._run(execute)
