"""`pulse config check` on a deployment that is ready and on one that is not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pulse_cli.main import main
from tests.conftest import TEST_SECRET, build_latest_schema, run_on_database

CHECKS = ("settings", "secret key", "database", "redis", "email")


def check(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], **env: str
) -> tuple[int, dict[str, str]]:
    """Run `pulse config check` with exactly these PULSE_* settings; its code and its lines."""
    for name in [name for name in os.environ if name.startswith("PULSE_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(f"PULSE_{name}", value)
    code = main(["config", "check"])
    lines = capsys.readouterr().out.splitlines()
    return code, {line[:11].strip(): line[11:] for line in lines}


def test_a_ready_deployment_passes_every_check(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    redis_url: str,
    tmp_path: Path,
) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'pulse.sqlite3'}"
    run_on_database(database, build_latest_schema)

    code, lines = check(
        monkeypatch,
        capsys,
        DATA_DIR=str(tmp_path),
        DATABASE_URL=database,
        REDIS_URL=redis_url,
        SECRET_KEY=TEST_SECRET,
        SMTP_URL="smtp://pulse:mail-password@127.0.0.1:2525",
        MAIL_FROM="Campaign Pulse <pulse@example.com>",
    )

    assert code == 0, lines
    assert tuple(lines) == CHECKS
    assert all(line.startswith("ok") for line in lines.values()), lines
    assert "(latest)" in lines["database"]
    assert "smtp://127.0.0.1:2525" in lines["email"]
    assert "mail-password" not in str(lines)


def test_a_broken_deployment_names_each_problem_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "never-migrated.sqlite3"

    code, lines = check(
        monkeypatch,
        capsys,
        DATA_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{missing}",
        REDIS_URL="redis://127.0.0.1:1/0",
        SECRET_KEY="changeme",
    )

    assert code == 2
    assert tuple(lines) == CHECKS
    assert lines["settings"].startswith("ok")
    assert lines["secret key"].startswith("problem") and "PULSE_SECRET_KEY" in lines["secret key"]
    assert lines["database"].startswith("problem") and "pulse db upgrade" in lines["database"]
    assert lines["redis"].startswith("problem") and "not answering" in lines["redis"]
    assert lines["email"].startswith("ok")  # no email is a choice, not a problem
    assert not missing.exists()  # checking creates no database


def test_settings_that_do_not_parse_are_one_problem_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, lines = check(monkeypatch, capsys, DATA_DIR=str(tmp_path), PORT="eighty")

    assert code == 2
    assert list(lines) == ["settings"]
    assert lines["settings"].startswith("problem") and "PULSE_PORT" in lines["settings"]
