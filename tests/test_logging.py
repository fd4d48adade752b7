"""Logs as an admin reads them: a real server logging JSON lines, one per line, its own and
uvicorn's alike, with the request id of each request in every line that request logged; and the
text format."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from pulse_core.config import Settings
from pulse_core.logs import LogFormat, request_context, setup_logging
from tests.backend import ALICE, DEMO_PASSWORD, ServerThread, free_port

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@contextmanager
def logging_to(stream: io.StringIO, log_format: LogFormat) -> Iterator[None]:
    """This process logs as a server does (setup_logging at "info"), into `stream`."""
    root = logging.getLogger()
    level = root.level
    handler = setup_logging("info", log_format, stream=stream)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        logging.captureWarnings(False)


@SQLITE_ONLY
def test_a_server_logs_json_lines_with_each_requests_id(
    settings: Settings, demo_database_url: str
) -> None:
    settings = settings.model_copy(update={"port": free_port(), "database_url": demo_database_url})
    url = f"http://127.0.0.1:{settings.port}"
    stream = io.StringIO()
    with logging_to(stream, "json"):
        server = ServerThread(settings)
        server.start()
        try:
            login = httpx.post(
                f"{url}/api/auth/login", json={"email": ALICE, "password": DEMO_PASSWORD}
            )
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            campaigns = httpx.get(f"{url}/api/campaigns", headers=headers).json()
            draft = next(c for c in campaigns if c["state"] == "not_launched")
            launch = httpx.post(
                f"{url}/api/campaigns/{draft['id']}/launch",
                headers={**headers, "X-Request-ID": "launch-by-alice.1"},
            )
            unsafe = httpx.get(f"{url}/healthz", headers={"X-Request-ID": "no spaces\tor tabs"})
        finally:
            server.stop()
    lines = stream.getvalue().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object

    assert launch.status_code == 202
    assert launch.headers["X-Request-ID"] == "launch-by-alice.1"
    assert re.fullmatch(r"[0-9a-f]{32}", unsafe.headers["X-Request-ID"])
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records), lines
    assert any(
        r["logger"] == "uvicorn.error" and "startup complete" in r["message"] for r in records
    )
    launched = [r for r in records if r.get("request_id") == "launch-by-alice.1"]
    assert {r["logger"] for r in launched} == {"server.api.campaigns", "server.access"}
    access = next(r for r in launched if r["logger"] == "server.access")
    assert access["status"] == 202
    assert access["method"] == "POST"
    assert access["path"] == f"/api/campaigns/{draft['id']}/launch"
    assert access["route"] == "/api/campaigns/{campaign_id}/launch"
    assert access["level"] == "INFO"
    assert access["duration_ms"] > 0
    assert access["client"].startswith("127.0.0.1:")
    assert login.json()["access_token"] not in stream.getvalue()


def test_text_lines_carry_time_level_logger_request_id_and_traceback() -> None:
    stream = io.StringIO()
    with logging_to(stream, "text"):
        logger = logging.getLogger("pulse.test")
        with request_context("req-7"):
            logger.info("inside %s", "a request")
        logger.debug("not shown at info")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    lines = stream.getvalue().splitlines()

    time = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    assert re.fullmatch(rf"{time} INFO pulse\.test \[req-7\] inside a request", lines[0])
    assert re.fullmatch(rf"{time} ERROR pulse\.test failed", lines[1])
    assert lines[2] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: boom"
