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
import contextlib
import os
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
# The database holds password hashes: only its owner may read it. SQLite gives its -wal, -shm
# and -journal files the mode of the database file.
SQLITE_FILE_MODE = 0o600


class DatabaseUnavailable(RuntimeError):
    """The database did not answer; the caller should retry later."""


def prepare_sqlite_file(path: str | Path) -> None:
    """Create the SQLite file (and its folder) readable by its owner only, or make it so."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SQLITE_FILE_MODE))
    for file in (path, *(path.with_name(path.name + end) for end in ("-wal", "-shm", "-journal"))):
        # Another user's file (a shared deployment) is left as its owner set it.
        with contextlib.suppress(FileNotFoundError, PermissionError):
            if file.stat().st_mode & 0o077:
                file.chmod(SQLITE_FILE_MODE)


def _sqlite_engine(url: str, file: str | None, *, begin: str) -> AsyncEngine:
    engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        if file is not None:  # before WAL mode creates -wal and -shm with the file's mode
            prepare_sqlite_file(file)
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
            file = parsed.database if parsed.database not in (None, "", ":memory:") else None
            if file is not None:
                Path(file).parent.mkdir(parents=True, exist_ok=True)
            self.engine = _sqlite_engine(self.url, file, begin="BEGIN")
            self.write_engine = _sqlite_engine(self.url, file, begin="BEGIN IMMEDIATE")
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
        self._lookups = asyncio.Semaphore(pool_size)

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
    async def lookup(self) -> AsyncIterator[AsyncSession]:
        """`reader()` for a short read that thousands of clients may ask for at once (their
        WebSockets connecting again after a restart): at most `pool_size` hold a session,
        and the others wait before one is made. A session waiting for a pooled connection
        costs far more memory than a task waiting here: 1,000 connections at once left the
        server 2.6 MB larger without this."""
        async with self._lookups, self.reader() as session:
            yield session

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
