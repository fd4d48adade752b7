"""The database layer under cancellation: a cut-short transaction must not block the others."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from sqlalchemy import text

from pulse_data.database import Database

# About a second of work for SQLite, which calls started() as it begins.
LONG_STATEMENT = (
    "WITH RECURSIVE c(n) AS (SELECT started() UNION ALL SELECT n + 1 FROM c WHERE n < 5000000) "
    "SELECT count(*) FROM c"
)


def can_take_the_write_lock(path: Path) -> bool:
    connection = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        connection.close()


async def test_a_writer_cancelled_mid_statement_releases_the_sqlite_write_lock(
    tmp_path: Path,
) -> None:
    path = tmp_path / "pulse.sqlite3"
    db = Database(f"sqlite+aiosqlite:///{path}")
    loop = asyncio.get_running_loop()
    running = asyncio.Event()

    def started() -> int:  # called by SQLite, on the driver's thread
        loop.call_soon_threadsafe(running.set)
        return 1

    try:
        async with db.writer() as session:
            await session.execute(text("CREATE TABLE t (x INTEGER)"))
            await session.commit()

        async def long_job() -> None:
            async with db.writer() as session:
                connection = await session.connection()
                raw = await connection.get_raw_connection()
                await raw.driver_connection.create_function("started", 0, started)
                await session.execute(text("INSERT INTO t VALUES (1)"))
                await session.execute(text(LONG_STATEMENT))

        job = asyncio.create_task(long_job())
        await asyncio.wait_for(running.wait(), 10)
        assert not can_take_the_write_lock(path)
        cancelled_at = time.monotonic()
        job.cancel()  # as arq does when a job times out
        await asyncio.wait([job])
        assert job.cancelled()

        async def released() -> None:
            while not can_take_the_write_lock(path):
                await asyncio.sleep(0.02)

        # The lock goes once the cut-short statement ends (about a second). Without the
        # release it would stay as long as the cancelled job's traceback (here: the test).
        await asyncio.wait_for(released(), 10)
        print(f"write lock released {time.monotonic() - cancelled_at:.2f} s after the cancel")
        async with db.writer() as session:  # the next writer goes ahead; the job left nothing
            await session.execute(text("INSERT INTO t VALUES (2)"))
            await session.commit()
            assert await session.scalar(text("SELECT count(*) FROM t")) == 1
    finally:
        await db.dispose()


async def test_lookups_asked_all_at_once_hold_few_sessions_and_all_get_their_answer(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'lookups.sqlite3'}", pool_size=3)
    holding = 0
    most = 0
    go_on = asyncio.Event()

    async def look() -> int:
        nonlocal holding, most
        async with db.lookup() as session:
            holding += 1
            most = max(most, holding)
            await go_on.wait()
            answer = int(await session.scalar(text("SELECT 42")) or 0)
            holding -= 1
            return answer

    try:
        lookups = [asyncio.create_task(look()) for _ in range(50)]
        async with asyncio.timeout(30):
            while holding < 3:
                await asyncio.sleep(0.01)
        for _ in range(10):  # the others had every chance to take a session too
            await asyncio.sleep(0)
        assert holding == 3
        go_on.set()
        answers = await asyncio.gather(*lookups)
    finally:
        await db.dispose()

    assert answers == [42] * 50
    assert most == 3
