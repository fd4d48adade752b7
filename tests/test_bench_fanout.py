"""The fan-out benchmark runs, at a tiny size, on the product's server and both comparison
servers, and writes the figures its readers look for (bench/README.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(300)
def test_the_fanout_benchmark_measures_our_server_and_the_comparison_servers(
    tmp_path: Path,
) -> None:
    out = tmp_path / "fanout.json"
    finished = subprocess.run(
        [sys.executable, "-m", "bench.fanout", "--subscribers", "20", "--flood-seconds", "0.2",
         "--paced-seconds", "0.5", "--quiet-wait", "0", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr[-3000:]
    report = json.loads(out.read_text())

    # Our server's entries are where a reader of the first format finds them.
    [ours] = report["results"]
    assert ours["n"] == 20
    assert ours["server_cpu_us_per_frame"] > 0
    assert isinstance(ours["kb_per_connection"], float)

    peers = {entry["server"]: entry for entry in report["peers"]}
    assert sorted(peers) == ["floor", "socketio"]
    for entry in (ours, *peers.values()):
        checks = entry["checks"]
        assert entry["server_cpu_us_per_frame"] > 0, entry["server"]
        assert entry["flood_frames_per_second"] > 0, entry["server"]
        assert checks["frames_received"] == checks["frames_expected"] > 0, entry["server"]
        assert checks["gaps_or_duplicates"] == 0, entry["server"]

    [row] = report["comparison"]
    assert row["n"] == 20
    assert row["ours_over_floor"] > 0
    assert row["socketio_over_ours"] > 0
    assert isinstance(row["ours_over_floor_goal_met"], bool)
    assert isinstance(row["socketio_over_ours_goal_met"], bool)
    # ... and the table that prints them.
    assert "ours / floor" in finished.stdout
    assert "socketio / ours" in finished.stdout
