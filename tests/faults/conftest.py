"""The fault-injection deployment (one per database backend) and the table of what each fault did.

`pytest -m faults` runs these alone. The deployment is real processes: an embedded
redis-server on a unix socket, two `pulse server`, two `pulse worker`, on a freshly seeded
SQLite file, and on PostgreSQL when PULSE_TEST_POSTGRES_URL is set (in a database of its own,
`pulse_faults`, behind a TCP proxy that a test can cut).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES_URL
from tests.faults.cluster import Cluster, TcpProxy, prepare_database, run_async
from tests.faults.figures import FIGURES

FAULTS_DATABASE = "pulse_faults"
MEMBERS = 4_000
# Small offer and population batches make creating a campaign's offers, and populating its
# target, last long enough to be cut mid-way.
# The job timeout stays at its default (600 s), so only the job's lease can explain a retry
# of a killed worker's job within a minute.
PROCESS_ENV = {
    "PULSE_JOB_LEASE_SECONDS": "5",
    "PULSE_OFFER_BATCH_SIZE": "2",
    "PULSE_POPULATE_BATCH_SIZE": "100",
    # A campaign's offer job waits for its target's population in steps of 0.2 s, 0.4 s, ...
    "PULSE_POPULATE_RETRY_SECONDS": "0.2",
    "PULSE_OFFER_ACTIVATION_DELAY_SECONDS": "3600",
    "PULSE_SEND_QUEUE_FRAMES": "256",
    "PULSE_LOG_LEVEL": "info",
}

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgres",
        id="postgres",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(not POSTGRES_URL, reason="PULSE_TEST_POSTGRES_URL is not set"),
        ],
    ),
]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    write = terminalreporter.write_line
    terminalreporter.section("fault injection: what each fault did")
    write("| backend | fault | sent | delivered | duplicated | lost | time to recover | notes |")
    write("|---|---|---|---|---|---|---|---|")
    for row in FIGURES:
        write(
            f"| {row.backend} | {row.fault} | {row.sent} | {row.delivered} | {row.duplicated} "
            f"| {row.lost} | {row.recover_seconds:.2f} s | {row.note} |"
        )


def _postgres_faults_url() -> str:
    """`pulse_faults` on the server of PULSE_TEST_POSTGRES_URL, created when missing."""
    import asyncpg

    assert POSTGRES_URL is not None
    url = make_url(POSTGRES_URL)

    async def create() -> None:
        admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
        connection = await asyncpg.connect(admin, timeout=10)
        try:
            exists = await connection.fetchval(
                "SELECT 1 FROM pg_database WHERE datname = $1", FAULTS_DATABASE
            )
            if not exists:
                await connection.execute(f'CREATE DATABASE "{FAULTS_DATABASE}"')
        finally:
            await connection.close()

    run_async(create())
    return url.set(database=FAULTS_DATABASE).render_as_string(hide_password=False)


@pytest.fixture(scope="session", params=BACKENDS)
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A running deployment on freshly seeded data, shared by every fault test of one backend."""
    backend: str = request.param
    directory = Path(tempfile.mkdtemp(prefix="pf-"))  # short: unix socket paths are limited
    proxy: TcpProxy | None = None
    if backend == "sqlite":
        direct = process_url = f"sqlite+aiosqlite:///{directory / 'pulse.sqlite3'}"
    else:
        direct = _postgres_faults_url()
        parsed = make_url(direct)
        proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
        proxy.start()
        process_url = parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(
            hide_password=False
        )
    campaign_id, population = run_async(prepare_database(direct, MEMBERS))
    deployment = Cluster(
        backend=backend,
        directory=directory,
        database_url=process_url,
        direct_database_url=direct,
        members=MEMBERS,
        env_overrides=PROCESS_ENV,
        proxy=proxy,
        everyone_campaign_id=campaign_id,
        everyone_population=population,
    )
    try:
        deployment.start()
        yield deployment
    except BaseException:
        print(deployment.logs())
        raise
    finally:
        deployment.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def running(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """The deployment with every part up; its logs are printed when the test fails."""
    cluster.ensure_running()
    yield cluster
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(cluster.logs())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    if call.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report
