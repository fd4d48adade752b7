"""A server or worker never runs on a schema it was not built for, and readiness says so.

`pulse server` and `pulse worker` refuse an empty or behind database (exit 2, one line that
says to run `pulse db upgrade`), and `pulse db current` tells the three cases apart; a
running server's `/readyz` turns 503 when its schema changes under it, and when Redis is down
it names no internal path.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, make_url

from pulse_cli.embedded_redis import EmbeddedRedis
from pulse_core.config import Settings
from pulse_data.migrate import alembic_config, latest_revision, upgrade_database
from tests.backend import ServerThread, free_port, wait_for
from tests.conftest import TEST_SECRET, run_on_database
from tests.test_cli import PULSE, clean_env, run_pulse

FIRST = "0001"


def _stamp(revision: str) -> Callable[[Connection], None]:
    def stamp(connection: Connection) -> None:
        scripts = ScriptDirectory.from_config(alembic_config())
        MigrationContext.configure(connection).stamp(scripts, revision)

    return stamp


def _side_by_side(env: dict[str, str]) -> list[subprocess.CompletedProcess[str]]:
    """`pulse server`, `pulse worker` and `pulse db current`, run at once on one setting."""
    started = [
        subprocess.Popen(
            [*PULSE, *command],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in (["server"], ["worker"], ["db", "current"])
    ]
    results = []
    for process in started:
        stdout, stderr = process.communicate(timeout=60)
        results.append(
            subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
        )
    return results


def test_server_and_worker_refuse_an_empty_or_behind_schema_and_db_current_tells(
    empty_database: str, tmp_path: Path
) -> None:
    latest = latest_revision()
    settings = {
        "PULSE_REDIS_URL": "redis://127.0.0.1:1/0",
        "PULSE_SECRET_KEY": TEST_SECRET,
        "PULSE_PORT": str(free_port()),
    }
    url = make_url(empty_database)
    sqlite_file = url.database if url.get_backend_name() == "sqlite" else None
    if sqlite_file:  # SQLite: no PULSE_DATABASE_URL, so the file of the data directory
        assert Path(sqlite_file) == tmp_path / "pulse.sqlite3"
        env = clean_env(PULSE_DATA_DIR=str(tmp_path), **settings)
    else:
        env = clean_env(PULSE_DATABASE_URL=empty_database, **settings)

    empty = _side_by_side(env)
    if sqlite_file:
        assert not Path(sqlite_file).exists(), "a refused start created the SQLite file"
    upgrade_database(empty_database, FIRST)
    behind = _side_by_side(env)
    upgrade_database(empty_database)
    current = run_pulse("db", "current", env=env)

    for refusal in empty[:2] + behind[:2]:
        assert refusal.returncode == 2, refusal.stderr
        assert "Traceback" not in refusal.stderr
        assert len(refusal.stderr.strip().splitlines()) == 1, refusal.stderr
        assert "run `pulse db upgrade`" in refusal.stderr
    for refusal in empty[:2]:
        assert "database has no schema yet" in refusal.stderr
        if sqlite_file:
            assert "PULSE_DATABASE_URL is not set" in refusal.stderr
    for refusal in behind[:2]:
        assert f"schema is at revision {FIRST}, this version needs {latest}" in refusal.stderr
    assert [r.returncode for r in (empty[2], behind[2], current)] == [0, 0, 0]
    assert empty[2].stdout.strip() == "none (empty database; run pulse db upgrade)"
    assert behind[2].stdout.strip() == (
        f"{FIRST} (behind: the latest is {latest}; run pulse db upgrade)"
    )
    assert current.stdout.strip() == f"{latest} (latest)"


def _readyz(url: str) -> httpx.Response:
    return httpx.get(f"{url}/readyz", timeout=10)


def test_readyz_is_503_naming_the_schema_when_it_changes_and_hides_redis_paths(
    settings: Settings, demo_database_url: str, tmp_path: Path
) -> None:
    redis = EmbeddedRedis(tmp_path / "own-redis")
    redis.start()
    own = settings.model_copy(
        update={"port": free_port(), "database_url": demo_database_url, "redis_url": redis.url}
    )
    server = ServerThread(own)
    server.start()
    url = f"http://{own.host}:{own.port}"
    try:
        ready = _readyz(url)
        run_on_database(demo_database_url, _stamp(FIRST))  # as if an old backup were restored
        behind = _readyz(url)
        run_on_database(demo_database_url, _stamp("head"))
        ready_again = _readyz(url)
        redis.stop()
        redis_down = wait_for(lambda: (r := _readyz(url)).status_code == 503 and r, timeout=20)
    finally:
        server.stop()
        redis.stop()

    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["schema"] == "ok"
    assert behind.status_code == 503
    assert behind.json()["checks"]["schema"] == (
        f"database schema is at revision {FIRST}, this version needs {latest_revision()}: "
        "run `pulse db upgrade`"
    )
    assert behind.json()["checks"]["database"] == "ok"
    assert ready_again.status_code == 200, ready_again.text
    checks = redis_down.json()["checks"]
    assert checks["redis"] == "not answering"
    assert checks["database"] == checks["schema"] == "ok"
    assert str(tmp_path) not in redis_down.text and "redis.sock" not in redis_down.text


def test_a_database_that_does_not_answer_is_one_line_exit_1() -> None:
    env = clean_env(
        PULSE_DATABASE_URL="postgresql://pulse@127.0.0.1:1/pulse",
        PULSE_REDIS_URL="redis://127.0.0.1:1/0",
        PULSE_SECRET_KEY=TEST_SECRET,
    )
    result = run_pulse("worker", env=env)

    assert result.returncode == 1, result.stderr
    assert "cannot read the schema of the database" in result.stderr
    assert "PULSE_DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr
