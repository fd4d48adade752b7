"""`pulse events tail` and `pulse --version`, run as an operator runs them: real processes."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

import pytest
import redis

from pulse_cli.embedded_redis import EmbeddedRedis
from pulse_cli.process import Process
from pulse_core.names import EVENTS_CHANNEL, EventName
from pulse_core.protocol import event_frame
from tests.backend import ALICE, LiveBackend, wait_for
from tests.test_cli import PULSE, clean_env, run_pulse


@contextmanager
def tail(tmp_path: Path, env: dict[str, str], *args: str) -> Iterator[Process]:
    """`pulse events tail` writing to tmp_path/tail.out and tail.err; stopped if left running."""
    tailing = Process(
        "pulse events tail",
        [*PULSE, "events", "tail", *args],
        env,
        log_path=tmp_path / "tail.out",
        error_path=tmp_path / "tail.err",
    )
    with tailing:
        wait_for(lambda: "listening" in _read(tmp_path / "tail.err"), timeout=30)
        yield tailing


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _start(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*PULSE, *args], env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def _stop_with_ctrl_c(process: Process) -> int:
    process.signal(signal.SIGINT)
    return process.wait(timeout=15)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # Redis is what it reads
def test_events_tail_prints_a_launched_campaigns_events_until_ctrl_c(
    live_backend: LiveBackend, tmp_path: Path
) -> None:
    client = live_backend.client(ALICE)
    campaign = next(
        c
        for c in client.get("/api/campaigns").json()
        if c["state"] == "not_launched" and c["target"]["population_status"] == "not_populated"
    )
    topic = f"marketer:{live_backend.login(ALICE)['user']['marketer_id']}:campaigns"
    env = clean_env(PULSE_REDIS_URL=live_backend.settings.redis_url or "")
    out = tmp_path / "tail.out"

    with tail(tmp_path, env, "--topic", topic) as process:
        client.post(f"/api/campaigns/{campaign['id']}/launch").raise_for_status()
        wait_for(lambda: f"offers_created  campaign {campaign['id']}" in _read(out), timeout=30)
        code = _stop_with_ctrl_c(process)

    assert code == 0
    assert "Traceback" not in _read(tmp_path / "tail.err")
    lines = [line.split("  ") for line in process.log_since_start().splitlines()]
    assert lines and all(fields[1] == topic for fields in lines)
    mine = [fields for fields in lines if fields[4] == f"campaign {campaign['id']}"]
    events = [fields[3] for fields in mine]
    assert events.count("target_populated") == events.count("offers_created") == 1
    assert events.index("campaign_updated") < events.index("target_populated")
    launch = next(fields for fields in mine if fields[3] == "campaign_updated")
    assert launch[0].startswith("20") and launch[2].startswith("seq ")
    assert any(field.startswith("by ") for field in launch)  # the actor: alice launched it
    offers = next(fields for fields in mine if fields[3] == "offers_created")
    assert offers[5].startswith("count ") and int(offers[5].removeprefix("count ")) > 0


def test_events_tail_finds_the_redis_of_a_running_pulse_up_and_says_when_there_is_none(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    frame = event_frame(
        topic="campaign:7",
        seq=3,
        event=EventName.OFFERS_CREATED,
        campaign_id=7,
        ts="2026-12-03T10:00:00Z",
        count=737,
    )
    no_redis = _start("events", "tail", env=clean_env(PULSE_DATA_DIR=str(tmp_path / "none")))
    bad_topic = _start("events", "tail", "--topic", "campaign:x", env=clean_env())
    up_redis = EmbeddedRedis(data_dir / "redis")  # where `pulse up` keeps it
    up_redis.start()
    try:
        with tail(tmp_path, clean_env(PULSE_DATA_DIR=str(data_dir))) as process:
            publisher = redis.Redis.from_url(up_redis.url)
            publisher.publish(EVENTS_CHANNEL, "not an announcement")
            publisher.publish(EVENTS_CHANNEL, json.dumps([["campaign:7", 3, frame]]))
            publisher.close()
            wait_for(lambda: "offers_created" in _read(tmp_path / "tail.out"), timeout=30)
            code = _stop_with_ctrl_c(process)
    finally:
        up_redis.stop()
    no_redis_err = no_redis.communicate(timeout=30)[1]
    bad_topic_err = bad_topic.communicate(timeout=30)[1]

    assert code == 0
    assert process.log_since_start() == (
        "2026-12-03T10:00:00Z  campaign:7  seq 3  offers_created  campaign 7  count 737\n"
    )
    assert "ignored a malformed announcement" in _read(tmp_path / "tail.err")
    assert no_redis.returncode == 1
    assert "PULSE_REDIS_URL is not set and no `pulse up` is running in" in no_redis_err
    assert len(no_redis_err.strip().splitlines()) == 1
    assert bad_topic.returncode == 2
    assert "--topic: unknown topic 'campaign:x'" in bad_topic_err
    assert "Traceback" not in no_redis_err + bad_topic_err


def test_version_prints_the_installed_version() -> None:
    result = run_pulse("--version", env=clean_env())

    assert result.returncode == 0
    assert result.stdout == f"pulse {version('campaign-pulse')}\n"
