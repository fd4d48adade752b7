"""Outside demo mode a real `pulse server` process refuses to start with a default, short or
missing secret key (test_cli.py covers the unset key and "changeme")."""

from __future__ import annotations

import pytest

from tests.test_cli import clean_env, free_port, run_pulse


@pytest.mark.parametrize(
    "secret", ["", "   ", "secret", "PULSE-DEMO", " pulse ", "short-but-random-9f3Kq"]
)
def test_server_refuses_a_weak_secret_key(secret: str) -> None:
    env = clean_env(
        PULSE_REDIS_URL="redis://127.0.0.1:1/0",
        PULSE_SECRET_KEY=secret,
        PULSE_PORT=str(free_port()),
    )
    result = run_pulse("server", env=env)

    assert result.returncode == 2, result.stderr
    assert "PULSE_SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Uvicorn running" not in result.stderr


def test_worker_refuses_a_known_default_secret_key() -> None:
    env = clean_env(PULSE_REDIS_URL="redis://127.0.0.1:1/0", PULSE_SECRET_KEY="pulse-demo")
    result = run_pulse("worker", env=env)

    assert result.returncode == 2
    assert "PULSE_SECRET_KEY" in result.stderr
