"""`pulse members import` of a generated CSV file, run as a person runs it, twice.

Run: `.venv/bin/python -m bench.members_import --members 100000` (SQLite in a temporary
directory), and add `--database-url postgresql+asyncpg://postgres@127.0.0.1/pulse_bench` for an
EMPTY PostgreSQL database that it may wipe. It writes `handle,tags` rows tagged like the demo's
members (one trait of each demo group and one to three interests: 5 tags a member on average),
migrates the database, and times `python -m pulse_cli members import FILE` (the whole process)
the first time (every member added) and a second time (every member unchanged).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.launch import database_url, wipe
from pulse_data import seed_data
from pulse_data.migrate import upgrade_database

SEED = 20261203


def write_members_csv(path: Path, members: int) -> int:
    """Write `members` rows tagged as the demo's members are; returns how many tags they hold."""
    rng = random.Random(SEED)
    groups = seed_data.TRAIT_GROUPS
    tags_written = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["handle", "tags"])
        for n in range(1, members + 1):
            tags = []
            for group, traits in groups.items():
                many = seed_data.MAX_INTERESTS if group == seed_data.MULTI_VALUED_GROUP else 1
                tags += [f"{group}:{trait}" for trait in rng.sample(traits, rng.randint(1, many))]
            tags_written += len(tags)
            writer.writerow([f"member-{n:07d}", ";".join(tags)])
    return tags_written


def run_import(url: str, path: Path) -> tuple[float, str]:
    """Seconds the whole `pulse members import` process took, and the summary it printed."""
    env = {**os.environ, "PULSE_DATABASE_URL": url}
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pulse_cli", "members", "import", str(path)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"the import failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return seconds, result.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url", help="an empty database it may wipe (default: SQLite in a temp dir)"
    )
    parser.add_argument("--members", type=int, default=100_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pulse-bench-") as directory:
        url = database_url(args, directory)
        backend = url.split(":", 1)[0].split("+", 1)[0]
        path = Path(directory) / "members.csv"
        tags = write_members_csv(path, args.members)
        size_mb = path.stat().st_size / 1e6
        print(f"{path.name}: {args.members:,} members, {tags:,} tags, {size_mb:.1f} MB")
        asyncio.run(wipe(url))
        upgrade_database(url)
        first, summary = run_import(url, path)
        print(f"{backend}: first import {first:.2f} s ({summary})")
        second, summary = run_import(url, path)
        print(f"{backend}: second import {second:.2f} s ({summary})")


if __name__ == "__main__":
    main()
