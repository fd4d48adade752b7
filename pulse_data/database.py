"""Engines and sessions for SQLite (the default) and PostgreSQL.

SQLite allows one writer at a time. Write transactions start with `BEGIN IMMEDIATE`, so a
writer waits for the lock (up to the busy timeout) instead of failing half-way through;
reads use plain deferred transactions and never wait behind writers (WAL mode).

A read session sees one snapshot from its first statement on, on both databases (a deferred
transaction in WAL mode; REPEATABLE READ on PostgreSQL), so a campaign, its stats and its
topic's seq read together agree with each other.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from pulse_core.config import async_database_url

SQLITE_BUSY_TIMEOUT_MS = 30_000


class DatabaseUnavailable(RuntimeError):
    """The database did not answer; the caller should retry later."""


def _sqlite_engine(url: str, *, begin: str) -> AsyncEngine:
    engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)

    return engine


class Database:
    """The engines and session factories of one process."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = async_database_url(url)
        parsed = make_url(self.url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine = _sqlite_engine(self.url, begin="BEGIN")
            self.write_engine = _sqlite_engine(self.url, begin="BEGIN IMMEDIATE")
        else:
            self.engine = create_async_engine(
                self.url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
            )
            self.write_engine = self.engine
        read_engine = (
            self.engine
            if self.is_sqlite
            else self.engine.execution_options(isolation_level="REPEATABLE READ")
        )
        self._reader = async_sessionmaker(read_engine, expire_on_commit=False)
        self._writer = async_sessionmaker(self.write_engine, expire_on_commit=False)

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only."""
        async with self._reader() as session:
            try:
                yield session
            except asyncio.CancelledError as cancelled:
                self._release_cancelled(cancelled)
                raise

    @asynccontextmanager
    async def writer(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction holds the write lock from its first statement on SQLite.

        The caller commits; leaving the block without a commit rolls back.
        """
        async with self._writer() as session:
            try:
                yield session
            except asyncio.CancelledError as cancelled:
                self._release_cancelled(cancelled)
                raise

    def _release_cancelled(self, cancelled: asyncio.CancelledError) -> None:
        """Let go of a SQLite connection whose statement a cancellation cut short.

        SQLAlchemy drops such a connection, but SQLite closes it (and releases the write lock
        with it) only once the statement is finalized, and the cursor lives on in the frames
        of the cancellation's traceback: a cancelled job (an arq timeout, a shutdown) would
        otherwise block every writer until the garbage collector came by.
        """
        if self.is_sqlite:
            traceback.clear_frames(cancelled.__traceback__)

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.write_engine is not self.engine:
            await self.write_engine.dispose()
