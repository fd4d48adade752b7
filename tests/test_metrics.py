"""Prometheus metrics as an admin's Prometheus sees them: a live server's `/metrics` and a live
worker's metrics port, parsed with prometheus_client's parser; the slow-update alert; and the
shipped alert rules, checked and unit-tested with the real `promtool`."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from pulse_core.config import Settings
from server.metrics import ServerMetrics
from tests.backend import ALICE, LiveBackend, free_port, parse_metrics
from tests.test_live_flows import campaign_in_state
from tests.wsclient import WsClient, events_of

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
METRICS_TOKEN = "scrape-token-for-tests"
RULES = Path(__file__).resolve().parent.parent / "packaging" / "prometheus"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The usual test settings, with a metrics token and a worker metrics port."""
    return settings.model_copy(
        update={"metrics_token": METRICS_TOKEN, "worker_metrics_port": free_port()}
    )


async def scrape_until(
    url: str, ready: Callable[[dict[str, float]], bool], timeout: float = 10
) -> dict[str, float]:
    """The metrics at `url` once `ready` says so (with the metrics token)."""
    headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    async with httpx.AsyncClient(timeout=5) as http, asyncio.timeout(timeout):
        while True:
            response = await http.get(url, headers=headers)
            response.raise_for_status()
            if ready(metrics := parse_metrics(response.text)):
                return metrics
            await asyncio.sleep(0.05)


@SQLITE_ONLY
async def test_a_launch_shows_in_the_server_and_worker_metrics(live_backend: LiveBackend) -> None:
    server_url = f"{live_backend.url}/metrics"
    worker_url = f"http://127.0.0.1:{live_backend.settings.worker_metrics_port}/metrics"
    with live_backend.client(ALICE) as alice:
        campaign = campaign_in_state(alice, "not_launched", population_status="not_populated")
        async with await WsClient.open(live_backend.ws_url, live_backend.token(ALICE)) as ws:
            await ws.subscribe(f"campaign:{campaign['id']}")
            assert alice.post(f"/api/campaigns/{campaign['id']}/launch").status_code == 202
            events = events_of(await ws.recv_until(lambda f: f.get("event") == "offers_created"))
            server = await scrape_until(
                server_url, lambda m: m["pulse_broadcast_latency_seconds_count"] >= len(events)
            )
    created = events[-1]["count"]
    worker = await scrape_until(
        worker_url, lambda m: m["pulse_worker_offers_created_total"] >= created
    )
    async with httpx.AsyncClient(timeout=5) as http:
        refusals = [
            await http.get(url, headers=headers)
            for url in (server_url, worker_url)
            for headers in ({}, {"Authorization": "Bearer not-the-token"})
        ]

    launch = 'method="POST",route="/api/campaigns/{campaign_id}/launch",status="202"'
    assert server[f"pulse_http_request_duration_seconds_count{{{launch}}}"] == 1
    assert server['pulse_login_attempts_total{outcome="success"}'] >= 1
    assert server["pulse_websocket_connections"] >= 1
    assert server["pulse_subscriptions"] >= 1
    assert server["pulse_frames_delivered_total"] >= len(events)
    assert 1 <= server["pulse_frames_encoded_total"] <= server["pulse_frames_delivered_total"]
    assert 1 <= server["pulse_subscriber_writes_total"] <= server["pulse_frames_delivered_total"]
    assert server["pulse_listener_connected"] == 1
    assert 0 < server["pulse_listener_last_delivery_seconds"] < 5  # it delivered the events
    assert server["pulse_session_watch_healthy"] == 1
    assert server["pulse_broadcast_slow"] == 0
    assert not [name for name in server if f"/api/campaigns/{campaign['id']}" in name]
    offers = 'function="create_initial_pending_offers",outcome="complete"'
    assert worker[f"pulse_worker_jobs_total{{{offers}}}"] >= 1
    assert worker['pulse_worker_jobs_total{function="populate_target",outcome="complete"}'] >= 1
    assert worker['pulse_worker_job_duration_seconds_count{function="populate_target"}'] >= 1
    assert "pulse_worker_queue_jobs" in worker
    assert [r.status_code for r in refusals] == [401] * 4
    assert not [r for r in refusals if "pulse_" in r.text]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_slow_broadcasts_log_one_error_a_minute_and_raise_the_gauge(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    metrics = ServerMetrics(lambda: None, slow_broadcast_seconds=1.0, clock=clock)
    caplog.set_level(logging.ERROR, logger="server.slow_broadcast")

    def a_minute_of(latency: float) -> dict[str, float]:
        for _ in range(600):  # ten events a second
            metrics.observe_broadcast(latency)
            clock.now += 0.1
        return parse_metrics(metrics.render().decode())

    fast = a_minute_of(0.05)
    slow = a_minute_of(2.5)
    errors_after_one_slow_minute = len(caplog.records)
    a_minute_of(2.5)
    errors_after_two = len(caplog.records)
    clock.now += 61
    quiet = parse_metrics(metrics.render().decode())

    assert (fast["pulse_broadcast_slow"], fast["pulse_broadcast_latency_p99_seconds"]) == (
        0,
        pytest.approx(0.05, rel=0.1),
    )
    assert slow["pulse_broadcast_slow"] == 1
    assert 2.5 <= slow["pulse_broadcast_latency_p99_seconds"] <= 2.75
    assert slow["pulse_broadcast_latency_seconds_count"] == 1200
    assert errors_after_one_slow_minute == 1
    assert errors_after_two == 2
    assert "p99 broadcast latency" in caplog.records[0].getMessage()
    assert "1000" in caplog.records[0].getMessage()  # the threshold, in ms
    assert (quiet["pulse_broadcast_slow"], quiet["pulse_broadcast_latency_p99_seconds"]) == (0, 0)
    assert not math.isnan(quiet["pulse_broadcast_latency_seconds_sum"])


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: .ci/run installs Debian's prometheus package")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return path


def test_promtool_passes_the_config_the_alert_rules_their_tests_and_the_metrics() -> None:
    promtool = _promtool()
    check = subprocess.run(
        [promtool, "check", "config", "prometheus.yml"],  # its rule files too
        cwd=RULES,
        capture_output=True,
        text=True,
        timeout=60,
    )
    unit = subprocess.run(
        [promtool, "test", "rules", "alerts_test.yml"],
        cwd=RULES,
        capture_output=True,
        text=True,
        timeout=60,
    )

    metrics = ServerMetrics(lambda: None, slow_broadcast_seconds=1.0)
    metrics.observe_broadcast(0.2)
    metrics.observe_request("GET", "/api/me", 200, 0.01)
    lint = subprocess.run(
        [promtool, "check", "metrics"],
        input=metrics.render().decode(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert check.returncode == 0, check.stdout + check.stderr
    assert unit.returncode == 0, unit.stdout + unit.stderr
    assert lint.returncode == 0, lint.stdout + lint.stderr
