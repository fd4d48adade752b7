"""The fan-out benchmark's report: Markdown tables of each server's figures, and the ratios of
the product's server to the comparison servers with issue 10's goals."""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# Issue 10's goals, measured in the same run.
GOAL_OURS_OVER_FLOOR = 1.25  # the product's server CPU per frame / the floor design's, at most
GOAL_SOCKETIO_OVER_OURS = 10.0  # python-socketio's server CPU per frame / ours, at least
GOAL_KB_PER_CONNECTION = 15.0  # the product's memory per idle connection, at most


@dataclass
class Result:
    """One server's figures at one N (`server`: pulse, floor or socketio)."""

    n: int
    server: str = "pulse"
    flood_frames_per_second: float = 0.0
    server_cpu_us_per_frame: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    kb_per_connection: float = 0.0
    flood: dict[str, Any] = field(default_factory=dict)
    paced: dict[str, Any] = field(default_factory=dict)
    flood_runs: list[dict[str, Any]] = field(default_factory=list)
    paced_runs: list[dict[str, Any]] = field(default_factory=list)
    memory: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)
    server_metrics: dict[str, Any] = field(default_factory=dict)


def _cell(value: float, runs: Sequence[float], unit: str = "") -> str:
    """The reported run's value, and the range over all runs when there were several."""
    digits = 0 if value >= 100 or unit else 1
    text = f"{value:,.{digits}f}{unit}"
    if len(runs) > 1:
        text += f" ({min(runs):,.{digits}f}–{max(runs):,.{digits}f})"
    return text


def table(results: Sequence[Result]) -> str:
    """The headline table, then the one that says whether to believe it."""
    lines = [
        "| N | delivered frames/s (flood) | server CPU µs/frame | p50 ms | p99 ms "
        "(at 20k frames/s) | KB per connection |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        flood = [run["frames_per_second"] / 1000 for run in r.flood_runs]
        cpu = [run["server_cpu_us_per_frame"] for run in r.flood_runs]
        p50 = [run["p50_ms"] for run in r.paced_runs]
        p99 = [run["p99_ms"] for run in r.paced_runs]
        overloaded = " (overloaded)" if r.paced.get("overloaded") else ""
        lines.append(
            f"| {_label(r)} | {_cell(r.flood_frames_per_second / 1000, flood, 'k')} | "
            f"{_cell(r.server_cpu_us_per_frame, cpu)} | {_cell(r.p50_ms, p50)} | "
            f"{_cell(r.p99_ms, p99)}{overloaded} | {r.kb_per_connection:.0f} |"
        )
    lines += [
        "",
        "| N | server core busy (flood) | server GC share of its CPU (flood / paced) | "
        "other processes on server core (flood / paced) | "
        "client core busy (flood) | client-side µs/frame | paced frames/s | "
        "server CPU µs/frame (paced) | p99.9 ms | max ms | slow consumers | gaps | "
        "frames received / expected |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        f, p, c = r.flood, r.paced, r.checks
        lines.append(
            f"| {_label(r)} | {f.get('server_core_busy', 0):.0%} | "
            f"{f.get('server_gc_share_of_cpu') or 0:.0%} / "
            f"{p.get('server_gc_share_of_cpu') or 0:.0%} | "
            f"{f.get('other_processes_on_server_core', 0):.0%} / "
            f"{p.get('other_processes_on_server_core', 0):.0%} | "
            f"{f.get('client_core_busy', 0):.0%} | {f.get('client_side_cpu_us_per_frame')} | "
            f"{p.get('frames_per_second', 0):,.0f} | {p.get('server_cpu_us_per_frame')} | "
            f"{p.get('p999_ms')} | {p.get('max_ms')} | {c.get('slow_consumers')} | "
            f"{c.get('gaps_or_duplicates')} | {c.get('frames_received'):,} / "
            f"{c.get('frames_expected'):,} |"
        )
    if any(r.paced.get("server_histogram_events") for r in results):
        lines += [
            "",
            "| N | p50 / p99 ms, every frame (bench clients) | p50 / p99 ms, "
            "pulse_broadcast_latency_seconds (per event, last subscriber) | events observed |",
            "|---|---|---|---|",
        ]
        for r in results:
            p = r.paced
            lines.append(
                f"| {r.n:,} | {p.get('p50_ms')} / {p.get('p99_ms')} | "
                f"{p.get('server_histogram_p50_ms')} / {p.get('server_histogram_p99_ms')} | "
                f"{p.get('server_histogram_events')} |"
            )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    versions = {}
    for name in (
        "uvicorn",
        "uvloop",
        "websockets",
        "fastapi",
        "starlette",
        "redis",
        "python-socketio",
        "python-engineio",
    ):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[name] = version(name)
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        **versions,
    }


def _label(result: Result) -> str:
    return f"{result.n:,}" if result.server == "pulse" else f"{result.n:,} ({result.server})"


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if not numerator or not denominator:
        return None
    return round(numerator / denominator, 2)


def comparison(results: Sequence[Result]) -> list[dict[str, Any]]:
    """Per N: each server's CPU per frame and KB per connection, the ratios and the goals."""
    rows = []
    for n in sorted({r.n for r in results}):
        at = {r.server: r for r in results if r.n == n}
        cpu = {name: r.server_cpu_us_per_frame for name, r in at.items()}
        kb = {name: r.kb_per_connection for name, r in at.items()}
        ours_over_floor = _ratio(cpu.get("pulse"), cpu.get("floor"))
        socketio_over_ours = _ratio(cpu.get("socketio"), cpu.get("pulse"))
        rows.append(
            {
                "n": n,
                "server_cpu_us_per_frame": cpu,
                "kb_per_connection": kb,
                "ours_over_floor": ours_over_floor,
                "ours_over_floor_goal_met": None
                if ours_over_floor is None
                else ours_over_floor <= GOAL_OURS_OVER_FLOOR,
                "socketio_over_ours": socketio_over_ours,
                "socketio_over_ours_goal_met": None
                if socketio_over_ours is None
                else socketio_over_ours >= GOAL_SOCKETIO_OVER_OURS,
                "ours_kb_goal_met": None
                if "pulse" not in kb
                else kb["pulse"] <= GOAL_KB_PER_CONNECTION,
            }
        )
    return rows


def _goal(value: float | None, met: bool | None, unit: str = "×") -> str:
    if value is None:
        return "—"
    return f"{value:g}{unit} ({'met' if met else 'NOT met'})"


def comparison_table(rows: Sequence[dict[str, Any]], servers: Sequence[str]) -> str:
    """One table: the servers' CPU per frame and memory per connection, and the ratios."""
    names = " / ".join(servers)
    lines = [
        f"| N | server CPU µs/frame, flood ({names}) | KB per connection ({names}) | "
        f"ours / floor, CPU (goal ≤ {GOAL_OURS_OVER_FLOOR:g}) | "
        f"socketio / ours, CPU (goal ≥ {GOAL_SOCKETIO_OVER_OURS:g}) | "
        f"ours, KB per connection (goal ≤ {GOAL_KB_PER_CONNECTION:g}) |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        cpu = " / ".join(_number(row["server_cpu_us_per_frame"].get(s)) for s in servers)
        kb = " / ".join(_number(row["kb_per_connection"].get(s)) for s in servers)
        ours_kb = row["kb_per_connection"].get("pulse")
        lines.append(
            f"| {row['n']:,} | {cpu} | {kb} | "
            f"{_goal(row['ours_over_floor'], row['ours_over_floor_goal_met'])} | "
            f"{_goal(row['socketio_over_ours'], row['socketio_over_ours_goal_met'])} | "
            f"{_goal(ours_kb, row['ours_kb_goal_met'], ' KB')} |"
        )
    return "\n".join(lines)


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"
