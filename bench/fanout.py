"""Fan-out benchmark: N subscribers of one topic, fed through Redis, on the real server and on
two comparison servers with the same clients, frames and load.

    .venv/bin/python -m bench.fanout --subscribers 1000,10000      # pulse, floor and socketio
    .venv/bin/python -m bench.fanout --quick          # N=100, all three, short phases
    .venv/bin/python -m bench.fanout --servers pulse --subscribers 10000 --server-metrics off

The path measured is the production one: this process publishes announcements on Redis
(`pulse_data.pubsub.encode_announcement`, channel `EVENTS_CHANNEL`, frames built with
`pulse_core.protocol.event_frame`, each event on both of its campaign's topics, as the workers do)
to an embedded redis-server; a real server process (`server.main.run_server`, a throwaway SQLite
database) listens, fans out, and writes WebSocket frames to N subscribers of `campaign:<id>`
held by separate client processes. The comparison servers (`bench.fanout_peers`: the floor
design, `websockets.broadcast` with a write-buffer guard, and python-socketio with a room) read
the same announcements and serve the same clients. Each server is pinned to one core; clients,
publisher and Redis share the other. See bench/README.md for what each column means.

Everything this starts (servers, Redis, client processes, a temp directory) is cleaned up on
exit, on errors and on Ctrl-C; every wait has a deadline, and every child has a lifetime limit
and dies with this process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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
from bench.fanout_peers import PEERS, PeerServer
from bench.fanout_phases import (
    Options,
    flood,
    foreign,
    paced,
    side_cpu_seconds,
    summary,
    wait_quiet,
)
from bench.fanout_report import Result, comparison, comparison_table, machine, table
from bench.fanout_server import ChildServer, PulseServer, scrape
from bench.fanout_setup import (
    BENCH_SESSION,
    BENCH_SESSION_HOURS,
    Deployment,
    EventSource,
    Publisher,
    make_database,
)
from bench.processes import BenchError, cpu_seconds, pin, raise_nofile, split_cores
from bench.wsclient_raw import client_class, warm_up
from pulse_cli.process import WaitTimeoutError, free_port, wait_until

SERVERS = ("pulse", *PEERS)


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

        def subscribed() -> bool:
            _fleet.check_alive()
            server.ensure_alive()
            return _fleet.total(S_SUBSCRIBED) + _fleet.total(S_FAILED) >= n

        wait_until(subscribed, 60 + n / 50, f"{n} subscribed connections", interval=0.001)
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


# --------------------------------------------------------------------------------------------
# Main


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fanout",
        description="Fan-out benchmark of the real server and two comparison servers: "
        "Redis -> server -> N WebSockets.",
    )
    parser.add_argument(
        "--subscribers",
        help="comma-separated subscriber counts (default 100,1000,10000; 100 with --quick)",
    )
    parser.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help="comma-separated servers to measure, each on the same N, clients and load: "
        "pulse (the product), floor (websockets.broadcast plus a write-buffer guard), "
        f"socketio (python-socketio, a room per topic); default {','.join(SERVERS)}",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: N=100 unless given, short phases"
    )
    parser.add_argument("--flood-seconds", type=float, default=3.0, help="flood publishing time")
    parser.add_argument("--paced-seconds", type=float, default=5.0, help="paced phase length")
    parser.add_argument(
        "--paced-rate",
        type=int,
        default=20_000,
        help="frames/s delivered in total in the paced phase (events/s = rate / N)",
    )
    parser.add_argument(
        "--per-process", type=int, default=2_000, help="connections per client process"
    )
    parser.add_argument(
        "--window",
        type=int,
        default=256,
        help="flood: most events published ahead of the slowest subscriber (keep it well "
        "under the server's send queue of 1024 frames)",
    )
    parser.add_argument(
        "--batch", type=int, default=1, help="flood: events per Redis announcement (default 1)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each phase this many times and report the run least disturbed by other "
        "processes (use 3 on a shared machine)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="before each phase, wait up to this long for the machine to be nearly idle",
    )
    parser.add_argument(
        "--server-gc-threshold",
        metavar="G0,G1,G2",
        help="experiment: these GC thresholds in every server instead of "
        "server.main.GC_THRESHOLDS (which the comparison servers use too)",
    )
    parser.add_argument(
        "--server-gc-freeze",
        action="store_true",
        help="experiment: gc.freeze() in the server once every subscriber is connected",
    )
    parser.add_argument(
        "--profile-server",
        type=Path,
        metavar="DIR",
        help="run the server under cProfile and write DIR/server-N.prof (slows it down)",
    )
    parser.add_argument(
        "--server-metrics",
        choices=("on", "off"),
        default="on",
        help="off: PULSE_METRICS_ENABLED=false in the server, to measure what metrics cost",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.subscribers is None:
        args.subscribers = "100" if args.quick else "100,1000,10000"
    if args.quick:
        args.flood_seconds = min(args.flood_seconds, 1.0)
        args.paced_seconds = min(args.paced_seconds, 2.0)
        args.quiet_wait = min(args.quiet_wait, 5.0)
    try:
        args.counts = [int(part) for part in args.subscribers.split(",") if part.strip()]
    except ValueError:
        parser.error("--subscribers takes numbers such as 100,1000,10000")
    if not args.counts or min(args.counts) < 1 or max(args.counts) > 50_000:
        parser.error("subscriber counts must be between 1 and 50,000")
    if not 1 <= args.window <= 1000 or not 1 <= args.batch <= 100:
        parser.error("--window must be 1..1000 and --batch 1..100")
    args.server_names = tuple(part.strip() for part in args.servers.split(",") if part.strip())
    unknown = set(args.server_names) - set(SERVERS)
    if unknown or not args.server_names or len(set(args.server_names)) < len(args.server_names):
        parser.error(f"--servers takes some of {','.join(SERVERS)}, each once")
    args.gc_threshold = None
    if args.server_gc_threshold:
        try:
            args.gc_threshold = tuple(int(part) for part in args.server_gc_threshold.split(","))
        except ValueError:
            args.gc_threshold = ()
        if len(args.gc_threshold) != 3:
            parser.error("--server-gc-threshold takes three numbers, e.g. 50000,20,100")
    if not 1 <= args.repeat <= 10 or not 0 <= args.quiet_wait <= 600:
        parser.error("--repeat must be 1..10 and --quiet-wait 0..600")
    if not 0.2 <= args.flood_seconds <= 60 or not 0.5 <= args.paced_seconds <= 120:
        parser.error("--flood-seconds must be 0.2..60 and --paced-seconds 0.5..120")
    return args


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    server_core, other_cores = split_cores()
    if server_core is None:
        log("warning: fewer than 2 cores available; nothing is pinned and figures mix")
    else:
        pin(0, other_cores)
    biggest = max(args.counts)
    limit = raise_nofile(biggest + 512)
    if limit < biggest + 256:
        log(f"error: the open-file limit is {limit}; N={biggest} needs {biggest + 256}")
        return 2
    if args.profile_server:
        args.profile_server.mkdir(parents=True, exist_ok=True)
    options = Options(
        flood_seconds=args.flood_seconds,
        paced_seconds=args.paced_seconds,
        paced_frames_per_second=args.paced_rate,
        per_process=args.per_process,
        window=args.window,
        batch=args.batch,
        repeat=args.repeat,
        quiet_wait_seconds=args.quiet_wait,
        gc_threshold=args.gc_threshold,
        freeze_gc=args.server_gc_freeze,
        profile_dir=args.profile_server.resolve() if args.profile_server else None,
        server_metrics=args.server_metrics == "on",
        servers=args.server_names,
    )

    results: list[Result] = []
    try:
        with (
            tempfile.TemporaryDirectory(prefix="pulse-bench-") as tmp_name,
            contextlib.ExitStack() as stack,
        ):
            from pulse_cli.embedded_redis import EmbeddedRedis
            from server.security import issue_token

            tmp = Path(tmp_name)
            redis_server = EmbeddedRedis(tmp / "redis")
            stack.callback(redis_server.stop)
            redis_url = redis_server.start()
            assert redis_server.process is not None
            pin(redis_server.process.pid, other_cores)
            database = tmp / "bench.sqlite3"
            marketer_id, user_id, campaign_id = make_database(database)
            secret = secrets.token_urlsafe(48)
            token = issue_token(
                secret,
                user_id=user_id,
                marketer_id=marketer_id,
                email="bench@bench.example",
                session_id=BENCH_SESSION,
                expires_at=datetime.now(UTC) + timedelta(hours=BENCH_SESSION_HOURS),
            )
            deployment = Deployment(
                tmp=tmp,
                database_url=f"sqlite:///{database}",
                redis_url=redis_url,
                redis_pid=redis_server.process.pid,
                secret_key=secret,
                token=token,
                campaign_id=campaign_id,
                marketer_id=marketer_id,
                server_core=server_core,
                other_cores=other_cores,
            )
            log(
                f"server on core {server_core}, clients/publisher/Redis on {other_cores}; "
                f"frames of {EventSource(campaign_id, marketer_id).frame_bytes()} bytes"
            )
            for n in args.counts:
                for name in options.servers:
                    results.append(measure(n, deployment, options, log, name))
    except KeyboardInterrupt:
        log("interrupted; everything started was stopped")
        return 130
    except (BenchError, WaitTimeoutError) as exc:
        log(f"error: {exc}")
        return 1

    ours = [r for r in results if r.server == "pulse"]
    peers = [r for r in results if r.server != "pulse"]
    rows = comparison(results)
    if ours:
        print()
        print(table(ours))
    if peers:
        print()
        print("Comparison servers (no authentication; python-socketio's flood keeps at most "
              "10,000 frames in flight, its paced phase sends at most 30,000 frames):")  # fmt: skip
        print()
        print(table(peers))
    if len(options.servers) > 1:
        print()
        print(comparison_table(rows, options.servers))
    # `results` holds the product's server, as it always has; the comparison servers and the
    # ratios are beside it.
    report = {"machine": machine(), "options": _jsonable(asdict(options)),
              "results": [asdict(r) for r in ours], "peers": [asdict(r) for r in peers],
              "comparison": rows}  # fmt: skip
    text = json.dumps(report, indent=2)
    print()
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


if __name__ == "__main__":
    sys.exit(main())
