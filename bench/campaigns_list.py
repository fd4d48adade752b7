"""`GET /api/campaigns` of a marketer with 10,000 campaigns, through a real `pulse server`.

Run: `.venv/bin/python -m bench.campaigns_list` (SQLite in a temporary directory), or on an
EMPTY PostgreSQL database it may wipe: `.venv/bin/python -m bench.campaigns_list
--database-url postgresql+asyncpg://root@127.0.0.1:5432/pulse_bench --reset`. It seeds the demo
data and `--campaigns` more campaigns of one marketer (as bench/desktop_login.py does), starts
an embedded redis-server and `pulse server`, and times `GET /api/campaigns` with one token,
asking for gzip as the desktop does and without, `--repeat` times each, alternated. Prints the
median and p90 of each and the goal: at most 300 ms at 10,000 campaigns on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench.desktop_login import GOAL_GET_S, prepare, running_server, time_rest
from bench.launch import database_options, database_url, wipe


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--campaigns", type=int, default=10_000, help="campaigns to add")
    parser.add_argument("--repeat", type=int, default=15, help="timed GETs of each kind")
    parser.add_argument("--members", type=int, default=2_000, help="demo members to seed")
    database_options(parser)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pulse-bench-list-") as tmp:
        url = database_url(args, tmp)
        if args.reset:
            asyncio.run(wipe(url))
        seeded = asyncio.run(prepare(url, args.members, args.campaigns))
        print(f"seeded {seeded.expected:,} campaigns in {seeded.seconds:.1f} s", file=sys.stderr)
        with running_server(url, Path(tmp)) as base:
            rest = time_rest(base, args.repeat)
    assert rest.campaigns == seeded.expected, (rest.campaigns, seeded.expected)
    backend = url.split(":", 1)[0]
    gzipped, identity = rest.seconds, rest.identity_seconds
    print(
        f"\n{backend}, {rest.campaigns:,} campaigns, {rest.payload_bytes / 1e6:.1f} MB of JSON "
        f"({rest.wire_bytes / 1e6:.2f} MB gzipped), load {os.getloadavg()[0]:.1f}:\n"
        f"GET /api/campaigns with gzip: median {statistics.median(gzipped) * 1000:.0f} ms, "
        f"p90 {p90(gzipped) * 1000:.0f} ms, min {min(gzipped) * 1000:.0f} ms\n"
        f"GET /api/campaigns without: median {statistics.median(identity) * 1000:.0f} ms, "
        f"p90 {p90(identity) * 1000:.0f} ms, min {min(identity) * 1000:.0f} ms"
    )
    median = statistics.median(gzipped)
    print(
        f"goal at 10,000 campaigns: GET /api/campaigns (gzip, median) <= "
        f"{GOAL_GET_S * 1000:.0f} ms: {median * 1000:.0f} ms "
        f"({'met' if median <= GOAL_GET_S else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
