"""One fan-out measurement: a fresh server (ours or a comparison server) for N subscribers,
its memory per connection, then the flood and paced phases (`bench.fanout_phases`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from bench.fanout_fleet import (
    S_CLOSED,
    S_ERRORS,
    S_FAILED,
    S_FRAMES,
    S_GAPS,
    S_SLOW,
    S_SUBSCRIBED,
    ClientFleet,
)
from bench.fanout_peers import PeerServer
from bench.fanout_phases import (
    Options,
    flood,
    foreign,
    paced,
    side_cpu_seconds,
    summary,
    wait_quiet,
)
from bench.fanout_report import Result
from bench.fanout_server import ChildServer, PulseServer, scrape
from bench.fanout_setup import Deployment, EventSource, Publisher
from bench.processes import BenchError, cpu_seconds
from bench.wsclient_raw import client_class, warm_up
from pulse_cli.process import free_port, wait_until


def _start_server(
    name: str, n: int, deployment: Deployment, options: Options, port: int
) -> tuple[ChildServer, Path | None]:
    """The server `name` (pulse, floor or socketio) for N subscribers, and where its profile
    goes (the product's server only)."""
    log_path = deployment.tmp / f"{name}-{n}.log"
    if name != "pulse":
        from server.main import GC_THRESHOLDS

        gc_threshold = options.gc_threshold or GC_THRESHOLDS
        return PeerServer(name, deployment, port, n, log_path, gc_threshold), None
    profile = options.profile_dir / f"server-{n}.prof" if options.profile_dir else None
    server = PulseServer(
        deployment, port, n, log_path, profile, options.gc_threshold, options.server_metrics
    )
    return server, profile


CONNECT_STALL_SECONDS = 60  # no new subscriber for this long: the server is stuck


def _wait_subscribed(fleet: ClientFleet, server: ChildServer, n: int) -> None:
    """Wait until every connection has subscribed (or failed), as long as they keep coming: a
    slow server on a busy machine (python-socketio took 80-280 s for 10,000) is not stuck."""
    progress = [-1, time.monotonic()]  # subscribed or failed so far, and when that last grew

    def subscribed() -> bool:
        fleet.check_alive()
        server.ensure_alive()
        done = fleet.total(S_SUBSCRIBED) + fleet.total(S_FAILED)
        if done > progress[0]:
            progress[:] = [done, time.monotonic()]
        elif time.monotonic() - progress[1] > CONNECT_STALL_SECONDS:
            raise BenchError(
                f"{done} of {n} connections subscribed, none in the last "
                f"{CONNECT_STALL_SECONDS} s:\n{server.log_tail()}"
            )
        return done >= n

    wait_until(subscribed, 120 + n / 10, f"{n} subscribed connections", interval=0.001)


def measure(
    n: int,
    deployment: Deployment,
    options: Options,
    log: Callable[[str], None],
    name: str = "pulse",
) -> Result:
    """Start server `name`, connect N subscribers, measure memory, flood and paced."""
    result = Result(n=n, server=name)
    port = free_port()
    server, profile = _start_server(name, n, deployment, options, port)
    fleet: ClientFleet | None = None
    publisher = Publisher(deployment.redis_url)
    source = EventSource(deployment.campaign_id, deployment.marketer_id)
    topic = source.topic
    try:
        server.wait_ready()
        problems = asyncio.run(
            warm_up(client_class(name), port, deployment.token, topic, min(20, n))
        )
        if problems:
            raise BenchError(f"{name}: warm-up: {'; '.join(problems)}\n{server.log_tail()}")
        time.sleep(0.5)
        rss_before = server.child.rss_kb()
        log(
            f"{name} N={n}: server pid {server.pid} ready, "
            f"RSS {rss_before / 1024:.1f} MB; connecting"
        )
        connect_started = time.monotonic()
        connect_cpu_before = cpu_seconds(server.pid)
        fleet = ClientFleet(
            n,
            options.per_process,
            port,
            deployment.token,
            topic,
            name,
            1500,
            deployment.other_cores,
        )
        _fleet = fleet

        _wait_subscribed(fleet, server, n)
        if (failed := fleet.total(S_FAILED)) > 0:
            raise BenchError(f"{failed} of {n} connections could not subscribe (see messages)")
        connect_seconds = time.monotonic() - connect_started
        connect_cpu = cpu_seconds(server.pid) - connect_cpu_before
        time.sleep(1.0)
        rss_after = server.child.rss_kb()
        result.memory = {
            "server_rss_before_kb": rss_before,
            "server_rss_after_kb": rss_after,
            "connect_seconds": round(connect_seconds, 2),
            "connect_server_cpu_ms_per_connection": round(connect_cpu / n * 1000, 2),
            "connect_server_core_busy": round(connect_cpu / connect_seconds, 3),
            "client_processes": len(fleet.procs),
        }
        result.kb_per_connection = round((rss_after - rss_before) / n, 1)
        if options.freeze_gc and name == "pulse":
            server.freeze_gc()
            time.sleep(2.0)
        log(
            f"{name} N={n}: {n} subscribed in {connect_seconds:.1f} s over "
            f"{len(fleet.procs)} client process(es); {result.kb_per_connection} KB per connection"
        )

        def ours() -> float:
            return cpu_seconds(server.pid) + side_cpu_seconds(_fleet, deployment)

        floods, paceds = [], []
        for run in range(options.repeat):
            wait_quiet(options.quiet_wait_seconds, log, ours)
            floods.append(flood(fleet, server, publisher, source, deployment, n, options))
            log(f"{name} N={n}: flood {run + 1}/{options.repeat}: {summary(floods[-1])}")
        for run in range(options.repeat):
            wait_quiet(options.quiet_wait_seconds, log, ours)
            paceds.append(paced(fleet, server, publisher, source, deployment, n, options))
            log(f"{name} N={n}: paced {run + 1}/{options.repeat}: {summary(paceds[-1])}")
        result.flood = min(floods, key=foreign)
        result.paced = min(paceds, key=foreign)
        result.flood_runs, result.paced_runs = floods, paceds
        result.flood_frames_per_second = result.flood["frames_per_second"]
        result.server_cpu_us_per_frame = result.flood["server_cpu_us_per_frame"]
        result.p50_ms = result.paced["p50_ms"]
        result.p99_ms = result.paced["p99_ms"]
        result.server_metrics = {
            metric: value
            for metric, value in (scrape(port) if server.has_metrics else {}).items()
            if metric.startswith("pulse_") and "{" not in metric
        }
        expected = source.seq
        live = n - fleet.total(S_CLOSED)
        result.checks = {
            "events_published": expected,
            "frame_bytes": source.frame_bytes(),
            "frames_received": fleet.total(S_FRAMES),
            "frames_expected": expected * n,
            "gaps_or_duplicates": fleet.total(S_GAPS),
            "slow_consumers": fleet.total(S_SLOW),
            "closed_early": n - live,
            "error_frames": fleet.total(S_ERRORS),
            "server_log_slow_consumer_lines": server.log_count("closing slow consumer"),
        }
    finally:
        if fleet is not None:
            summaries = fleet.stop()
            messages = [m for bye in summaries for m in bye.get("messages", [])]
            if messages:
                result.checks["client_messages"] = messages[:10]
        publisher.close()
        server.stop()
    if profile is not None and profile.exists():
        _print_profile(profile, log)
    return result


def _print_profile(path: Path, log: Callable[[str], None]) -> None:
    import io
    import pstats

    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.sort_stats("tottime").print_stats(25)
    log(f"server profile {path} (top 25 by own time):\n{out.getvalue()}")
