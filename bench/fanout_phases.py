"""The phases of one fan-out measurement: flood (deliver as fast as the server can) and paced
(a fixed rate, every frame's latency recorded), measured as server CPU per delivered frame."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.fanout_fleet import C_REC_HI, C_REC_LO, S_FRAMES, S_LAST_NS, TICK_SECONDS, ClientFleet
from bench.fanout_server import ChildServer, histogram_quantiles, scrape
from bench.fanout_setup import Deployment, EventSource, Publisher
from bench.processes import BenchError, core_busy_seconds, cpu_seconds
from bench.wsclient_raw import NO_RECORDING
from pulse_cli.process import wait_until

QUIET_BUSY_CORES = 0.25  # what "the machine is idle" means before each phase


@dataclass
class Options:
    flood_seconds: float
    paced_seconds: float
    paced_frames_per_second: int
    per_process: int
    window: int
    batch: int
    repeat: int
    quiet_wait_seconds: float
    gc_threshold: tuple[int, int, int] | None
    freeze_gc: bool
    profile_dir: Path | None
    server_metrics: bool = True
    servers: tuple[str, ...] = ("pulse",)


def _percentile(ordered: Sequence[int], fraction: float) -> float:
    if not ordered:
        return float("nan")
    return float(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))])


def side_cpu_seconds(fleet: ClientFleet, deployment: Deployment) -> float:
    """CPU seconds of everything but the server: clients, Redis, this process."""
    total = cpu_seconds(os.getpid()) + cpu_seconds(deployment.redis_pid)
    for pid in fleet.pids:
        with contextlib.suppress(OSError):
            total += cpu_seconds(pid)
    return total


def _gc_delta(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    """Collections and pause time per generation between two snapshots."""
    if not before or not after:
        return {}
    delta = {}
    for generation, (count, cpu, wall, longest) in after["generations"].items():
        count_before, cpu_before, wall_before, _ = before["generations"][generation]
        delta[f"gen{generation}"] = {
            "collections": count - count_before,
            "cpu_ms": round((cpu - cpu_before) * 1000, 1),
            "wall_ms": round((wall - wall_before) * 1000, 1),
            "longest_pause_ms": round(longest * 1000, 1),
        }
    return delta


def _gc_seconds(delta: dict[str, Any]) -> float:
    """CPU seconds the server spent collecting garbage."""
    return float(sum(entry["cpu_ms"] for entry in delta.values())) / 1000


def foreign_load(
    before: dict[int, float], server_cpu: float, side_cpu: float, deployment: Deployment
) -> tuple[float, float]:
    """CPU seconds that processes outside this benchmark took on the server core and on the
    other cores since `before` (other work on a shared machine makes the figures worse)."""
    after = core_busy_seconds()
    used = {core: after[core] - before.get(core, after[core]) for core in after}
    if deployment.server_core is None:
        return 0.0, max(0.0, sum(used.values()) - server_cpu - side_cpu)
    on_server = used.get(deployment.server_core, 0.0) - server_cpu
    on_clients = sum(used.get(core, 0.0) for core in deployment.other_cores or ()) - side_cpu
    return max(0.0, on_server), max(0.0, on_clients)


def drain(fleet: ClientFleet, seq: int, server: ChildServer, timeout: float) -> None:
    def delivered() -> bool:
        fleet.check_alive()
        server.ensure_alive()
        return fleet.min_seq() >= seq

    wait_until(delivered, timeout, f"delivery of seq {seq}", interval=0.001)


def flood(
    fleet: ClientFleet,
    server: ChildServer,
    publisher: Publisher,
    source: EventSource,
    deployment: Deployment,
    n: int,
    options: Options,
) -> dict[str, Any]:
    """Publish as fast as the server delivers, at most `window` events ahead of the slowest."""
    window = max(2, min(options.window, server.flood_inflight_frames // n))
    gc_before = server.gc_snapshot()
    frames_before = fleet.total(S_FRAMES)
    server_cpu_before = cpu_seconds(server.pid)
    side_cpu_before = side_cpu_seconds(fleet, deployment)
    cores_before = core_busy_seconds()
    first_seq = source.seq + 1
    started_ns = time.monotonic_ns()
    stop_publishing = time.monotonic() + options.flood_seconds
    waits = 0
    while time.monotonic() < stop_publishing:
        if source.seq - fleet.min_seq() >= window:
            waits += 1
            time.sleep(0.001)
            continue
        receivers = publisher.publish(source.announcement(options.batch))
        if receivers != 1:
            raise BenchError(f"the announcement reached {receivers} Redis subscribers, not 1")
    published_ns = time.monotonic_ns()
    drain(fleet, source.seq, server, timeout=120)
    ended_ns = fleet.latest(S_LAST_NS)
    server_cpu = cpu_seconds(server.pid) - server_cpu_before
    side_cpu = side_cpu_seconds(fleet, deployment) - side_cpu_before
    others = foreign_load(cores_before, server_cpu, side_cpu, deployment)
    gc = _gc_delta(gc_before, server.gc_snapshot())
    frames = fleet.total(S_FRAMES) - frames_before
    elapsed = (ended_ns - started_ns) / 1e9
    return {
        "events": source.seq - first_seq + 1,
        "frames": frames,
        "seconds": round(elapsed, 3),
        "publish_seconds": round((published_ns - started_ns) / 1e9, 3),
        "frames_per_second": round(frames / elapsed, 1),
        "server_cpu_seconds": round(server_cpu, 3),
        "server_cpu_us_per_frame": round(server_cpu / frames * 1e6, 2),
        "server_core_busy": round(server_cpu / elapsed, 3),
        "client_side_cpu_us_per_frame": round(side_cpu / frames * 1e6, 2),
        "client_core_busy": round(
            side_cpu / elapsed / max(1, len(deployment.other_cores or {0})), 3
        ),
        "window_events": window,
        "window_waits": waits,
        "server_gc_share_of_cpu": round(_gc_seconds(gc) / server_cpu, 3) if server_cpu else None,
        "server_gc": gc,
        "other_processes_on_server_core": round(others[0] / elapsed, 3),
        "other_processes_on_client_cores": round(others[1] / elapsed, 3),
    }


def paced(
    fleet: ClientFleet,
    server: ChildServer,
    publisher: Publisher,
    source: EventSource,
    deployment: Deployment,
    n: int,
    options: Options,
) -> dict[str, Any]:
    """Publish at `paced_frames_per_second / n` events/s and record every frame's latency."""
    rate = options.paced_frames_per_second / n
    count = max(10, round(rate * options.paced_seconds))
    if server.paced_max_frames:  # a slow server: fewer events, so the phase stays bounded
        count = min(count, max(2, server.paced_max_frames // n))
    backlog_limit = 512  # events; well under what the server holds for a client (1 MiB)
    fleet.ctrl[C_REC_HI] = source.seq + count
    fleet.ctrl[C_REC_LO] = source.seq + 1
    time.sleep(40 * TICK_SECONDS)  # every client has read the window
    scrape_before = scrape(server.port) if server.has_metrics else {}
    gc_before = server.gc_snapshot()
    frames_before = fleet.total(S_FRAMES)
    server_cpu_before = cpu_seconds(server.pid)
    side_cpu_before = side_cpu_seconds(fleet, deployment)
    cores_before = core_busy_seconds()
    started = time.monotonic()
    started_ns = time.monotonic_ns()
    late_publishes = 0
    overloaded = False
    for i in range(count):
        due = started + i / rate
        while (left := due - time.monotonic()) > 0:
            time.sleep(min(left, 0.05))
        if -left > 0.005:
            late_publishes += 1
        give_up = time.monotonic() + 60
        while source.seq - fleet.min_seq() >= backlog_limit and time.monotonic() < give_up:
            overloaded = True
            time.sleep(0.001)
        publisher.publish(source.announcement(1))
    drain(fleet, source.seq, server, timeout=120)
    ended_ns = fleet.latest(S_LAST_NS)
    server_cpu = cpu_seconds(server.pid) - server_cpu_before
    side_cpu = side_cpu_seconds(fleet, deployment) - side_cpu_before
    others = foreign_load(cores_before, server_cpu, side_cpu, deployment)
    gc = _gc_delta(gc_before, server.gc_snapshot())
    frames = fleet.total(S_FRAMES) - frames_before
    elapsed = (ended_ns - started_ns) / 1e9
    # The server's own figure: one observation per event, on the subscriber written last.
    observed, (server_p50, server_p99) = histogram_quantiles(
        scrape_before,
        scrape(server.port) if server.has_metrics else {},
        "pulse_broadcast_latency_seconds",
        (0.50, 0.99),
    )
    fleet.ctrl[C_REC_LO] = NO_RECORDING
    fleet.ctrl[C_REC_HI] = 0
    time.sleep(40 * TICK_SECONDS)
    samples = sorted(fleet.latencies())
    ms = 1e-6
    return {
        "events_per_second": round(rate, 3),
        "events": count,
        "frames": frames,
        "seconds": round(elapsed, 3),
        "frames_per_second": round(frames / elapsed, 1),
        "server_cpu_us_per_frame": round(server_cpu / frames * 1e6, 2) if frames else None,
        "server_core_busy": round(server_cpu / elapsed, 3),
        "latency_samples": len(samples),
        "p50_ms": round(_percentile(samples, 0.50) * ms, 2),
        "p90_ms": round(_percentile(samples, 0.90) * ms, 2),
        "p99_ms": round(_percentile(samples, 0.99) * ms, 2),
        "p999_ms": round(_percentile(samples, 0.999) * ms, 2),
        "max_ms": round(samples[-1] * ms, 2) if samples else None,
        "server_histogram_events": observed,
        "server_histogram_p50_ms": None if server_p50 is None else round(server_p50 * 1000, 1),
        "server_histogram_p99_ms": None if server_p99 is None else round(server_p99 * 1000, 1),
        "late_publishes": late_publishes,
        # the server fell behind: the backlog limit was hit or it delivered under 90% of the rate
        "overloaded": overloaded or frames / elapsed < 0.9 * options.paced_frames_per_second,
        "server_gc_share_of_cpu": round(_gc_seconds(gc) / server_cpu, 3) if server_cpu else None,
        "server_gc": gc,
        "other_processes_on_server_core": round(others[0] / elapsed, 3),
        "other_processes_on_client_cores": round(others[1] / elapsed, 3),
    }


def foreign(run: dict[str, Any]) -> float:
    """How much other processes ran on our cores during a run (the lower, the cleaner)."""
    return float(run["other_processes_on_server_core"] + run["other_processes_on_client_cores"])


def summary(run: dict[str, Any]) -> str:
    parts = [f"{run['frames_per_second']:,.0f} frames/s",
             f"server {run['server_cpu_us_per_frame']} CPU µs/frame"]  # fmt: skip
    if "p99_ms" in run:
        parts.append(f"p50 {run['p50_ms']} ms, p99 {run['p99_ms']} ms")
    if run.get("server_histogram_p99_ms") is not None:
        parts.append(
            f"server histogram p50 {run['server_histogram_p50_ms']} ms, "
            f"p99 {run['server_histogram_p99_ms']} ms"
        )
    if run.get("server_gc_share_of_cpu") is not None:
        parts.append(f"GC {run['server_gc_share_of_cpu']:.0%} of server CPU")
    parts.append(
        f"other processes took {run['other_processes_on_server_core']:.0%} of the server core "
        f"and {run['other_processes_on_client_cores']:.0%} of the client core"
    )
    return "; ".join(parts)


def wait_quiet(limit_seconds: float, log: Callable[[str], None], ours: Callable[[], float]) -> None:
    """Wait (at most `limit_seconds`) until other processes leave the machine nearly idle: on a
    shared machine, other people's work on our cores makes every figure worse. `ours()` is the
    CPU time of the benchmark's own processes, which is not counted. 0: do not look."""
    if limit_seconds <= 0:
        return
    deadline = time.monotonic() + limit_seconds
    said = False
    while True:
        before, ours_before = core_busy_seconds(), ours()
        time.sleep(0.5)
        after, ours_after = core_busy_seconds(), ours()
        busy = sum(after[core] - before.get(core, after[core]) for core in after)
        busy = max(0.0, busy - (ours_after - ours_before)) / 0.5
        if busy < QUIET_BUSY_CORES:
            return
        if time.monotonic() > deadline:
            log(f"the machine is still busy ({busy:.2f} cores in use); measuring anyway")
            return
        if not said:
            log(f"waiting for a quieter machine ({busy:.2f} cores in use by other processes)")
            said = True
