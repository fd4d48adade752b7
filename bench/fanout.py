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
import contextlib
import json
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.fanout_measure import measure
from bench.fanout_peers import PEERS
from bench.fanout_phases import Options
from bench.fanout_report import Result, comparison, comparison_table, machine, table
from bench.fanout_setup import (
    BENCH_SESSION,
    BENCH_SESSION_HOURS,
    Deployment,
    EventSource,
    make_database,
)
from bench.processes import BenchError, pin, raise_nofile, split_cores
from pulse_cli.process import WaitTimeoutError

SERVERS = ("pulse", *PEERS)


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
        "under what the server holds for a client before it sheds it: 1 MiB unsent)",
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
        args.quiet_wait = 0.0  # a smoke run: no waiting for a quiet machine
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
    failures: list[str] = []
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
                    try:
                        results.append(measure(n, deployment, options, log, name))
                    except (BenchError, WaitTimeoutError) as exc:
                        # the others are still worth reporting; the exit status says it failed
                        log(f"error: {name} N={n}: {exc}")
                        failures.append(f"{name} N={n}")
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
              "comparison": rows, "failed": failures}  # fmt: skip
    text = json.dumps(report, indent=2)
    print()
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    if failures:
        log(f"error: not measured: {', '.join(failures)} (see above)")
        return 1
    return 0


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


if __name__ == "__main__":
    sys.exit(main())
