"""The server processes a fan-out measurement talks to: a child process per server, pinned to
one core, its output in a log file, its garbage collections observed (`install_gc_probe`), and
always stopped. `PulseServer` is the product's `pulse server`; the comparison servers are in
`bench.fanout_peers`."""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.processes import HOST, BenchError, die_with_parent, lifetime_watchdog, raise_nofile
from pulse_cli.process import Process, ProcessExitedError, WaitTimeoutError, wait_ready

if TYPE_CHECKING:
    from bench.fanout_setup import Deployment

REPO_ROOT = Path(__file__).resolve().parent.parent
PULSE_CHILD_CODE = "import bench.fanout_server as b; b.pulse_server_child()"


def child_setup() -> dict[str, Any]:
    """What every server child does first; returns its config (a JSON document in argv[1])."""
    config: dict[str, Any] = json.loads(sys.argv[1])
    die_with_parent()
    if config["core"] is not None:
        os.sched_setaffinity(0, {config["core"]})
    raise_nofile(config["nofile"])
    lifetime_watchdog(config["lifetime_seconds"])
    install_gc_probe(config["gc_stats"])
    return config


def pulse_server_child() -> None:
    """Entry point of the `pulse server` subprocess."""
    config = child_setup()
    from pulse_core.config import Settings
    from server import main as server_main
    from server.main import run_server

    if config.get("gc_threshold"):  # an experiment: the server's own choice is the default
        server_main.GC_THRESHOLDS = tuple(config["gc_threshold"])

    settings = Settings(**config["settings"])
    if not config.get("profile"):
        run_server(settings)
        return
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        run_server(settings)
    finally:
        profiler.disable()
        profiler.dump_stats(config["profile"])


def install_gc_probe(path: str) -> None:
    """Observe the server's garbage collections (it changes nothing): SIGUSR1 writes the counts
    and pause times per generation to `path`; SIGUSR2 runs `gc.freeze()` (an experiment)."""
    import gc

    # per generation: collections, CPU seconds, wall seconds, longest wall pause
    stats = {generation: [0, 0.0, 0.0, 0.0] for generation in range(3)}
    started = [0.0, 0.0]

    def observe(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.thread_time()
            started[1] = time.perf_counter()
            return
        pause = time.perf_counter() - started[1]
        entry = stats[info["generation"]]
        entry[0] += 1
        entry[1] += time.thread_time() - started[0]
        entry[2] += pause
        entry[3] = max(entry[3], pause)

    def dump(signum: int, frame: Any) -> None:
        snapshot = {
            "generations": {str(g): list(entry) for g, entry in stats.items()},
            "frozen": gc.get_freeze_count(),
            "counts": gc.get_count(),
        }
        for entry in stats.values():
            entry[3] = 0.0  # the longest pause is per snapshot
        with open(path + ".tmp", "w") as out:
            json.dump(snapshot, out)
        os.replace(path + ".tmp", path)

    def freeze(signum: int, frame: Any) -> None:
        gc.collect()
        gc.freeze()

    gc.callbacks.append(observe)
    signal.signal(signal.SIGUSR1, dump)
    signal.signal(signal.SIGUSR2, freeze)


class ChildServer:
    """A server child process: `python -c code config`, its output in `log_path`."""

    name = "pulse"
    has_metrics = False  # whether it answers GET /metrics
    # Flood: at most this many frames in flight (published, not yet received), so that the
    # drain after the last publish stays short even when the server is slow.
    flood_inflight_frames = 50_000
    paced_max_frames: int | None = None  # paced: at most this many frames (None: rate x time)

    def __init__(self, code: str, config: dict[str, Any], port: int, log_path: Path) -> None:
        self.gc_path = Path(config["gc_stats"])
        env = {key: value for key, value in os.environ.items() if not key.startswith("PULSE_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        self.port = port
        # Its own process group (Ctrl-C reaches the orchestrator only; it stops us in order),
        # SIGTERMed if the orchestrator dies, its output in `log_path`.
        self.child = Process(
            self.name, [sys.executable, "-c", code, json.dumps(config)], env, log_path, REPO_ROOT
        ).start()

    @property
    def pid(self) -> int:
        return self.child.pid

    def ensure_alive(self) -> None:
        if not self.child.alive():
            raise BenchError(f"the {self.name} server died:\n{self.log_tail()}")

    def wait_ready(self, timeout: float = 60.0) -> None:
        try:
            wait_ready(f"http://{HOST}:{self.port}", timeout, process=self.child)
        except (WaitTimeoutError, ProcessExitedError) as exc:
            raise BenchError(f"the {self.name} server did not start: {exc}") from None

    def gc_snapshot(self, timeout: float = 5.0) -> dict[str, Any] | None:
        """The server's GC counters so far (see `install_gc_probe`); None if it did not answer."""
        self.gc_path.unlink(missing_ok=True)
        if not self.child.alive():
            return None
        self.child.signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(FileNotFoundError, ValueError):
                snapshot: dict[str, Any] = json.loads(self.gc_path.read_text())
                return snapshot
            time.sleep(0.005)
        return None

    def freeze_gc(self) -> None:
        """Experiment: make the server run `gc.collect(); gc.freeze()` now."""
        self.child.signal(signal.SIGUSR2)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.child.log_since_start().splitlines()[-lines:])

    def log_count(self, text: str) -> int:
        return self.child.log_since_start().count(text)

    def stop(self) -> None:
        """SIGTERM (uvicorn shuts down cleanly, a profile gets written), then SIGKILL."""
        self.child.stop(timeout=20)


def child_config(deployment: Deployment, n: int, log_path: Path, **more: Any) -> dict[str, Any]:
    """The config every server child reads in `child_setup`, plus `more`."""
    return {
        "core": deployment.server_core,
        "nofile": n + 512,
        "lifetime_seconds": 1800,
        "gc_stats": str(log_path.with_suffix(".gc.json")),
        **more,
    }


class PulseServer(ChildServer):
    """The product's server: `run_server(Settings(...))`, what `pulse server` runs."""

    name = "pulse"

    def __init__(
        self,
        deployment: Deployment,
        port: int,
        n: int,
        log_path: Path,
        profile: Path | None,
        gc_threshold: tuple[int, int, int] | None,
        metrics: bool = True,
    ) -> None:
        settings = {
            "data_dir": str(deployment.tmp),
            "database_url": deployment.database_url,
            "redis_url": deployment.redis_url,
            "secret_key": deployment.secret_key,
            "host": HOST,
            "port": port,
            "metrics_enabled": metrics,
        }
        config = child_config(
            deployment,
            n,
            log_path,
            settings=settings,
            profile=str(profile) if profile else None,
            gc_threshold=gc_threshold,
        )
        self.has_metrics = metrics
        super().__init__(PULSE_CHILD_CODE, config, port, log_path)


def http_get(port: int, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def scrape(port: int) -> dict[str, float]:
    """The server's `/metrics`, parsed: {sample: value}, a labelled sample keyed `name{le=...}`
    by its `le` only (the only label the broadcast histogram has); {} when metrics are off."""
    from prometheus_client.parser import text_string_to_metric_families

    status, body = http_get(port, "/metrics")
    if status != 200:
        return {}
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            le = sample.labels.get("le")
            samples[f"{sample.name}{{le={le}}}" if le else sample.name] = sample.value
    return samples


def histogram_quantiles(
    before: dict[str, float], after: dict[str, float], name: str, fractions: Sequence[float]
) -> tuple[int, list[float | None]]:
    """Observations of histogram `name` between two scrapes, and their quantiles in seconds,
    interpolated in their bucket as Prometheus's histogram_quantile does."""
    prefix = f"{name}_bucket{{le="
    buckets = sorted(
        (math.inf if key[len(prefix) : -1] == "+Inf" else float(key[len(prefix) : -1]),
         after[key] - before.get(key, 0.0))
        for key in after
        if key.startswith(prefix)
    )  # fmt: skip
    total = buckets[-1][1] if buckets else 0.0
    quantiles: list[float | None] = []
    for fraction in fractions:
        if not total:
            quantiles.append(None)
            continue
        rank, lower, below = fraction * total, 0.0, 0.0
        for bound, cumulative in buckets:
            if cumulative >= rank:
                inside = cumulative - below
                share = (rank - below) / inside if inside else 1.0
                quantiles.append(lower if math.isinf(bound) else lower + (bound - lower) * share)
                break
            lower, below = bound, cumulative
    return int(total), quantiles
