"""`pulse marketer` and `pulse user` as an operator runs them against a deployment's database:
what they create logs in over REST, and bad input is one line and exit status 2."""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator

import httpx
import pytest

from pulse_cli.main import main
from pulse_data.audit import AuditView
from tests.backend import CAROL, LiveBackend
from tests.test_accounts import audit_entries
from tests.test_cli import clean_env, run_pulse

ANN = "ann@initech.example"


def table_rows(output: str) -> list[list[str]]:
    """The cells of each body row of a table that `pulse` printed."""
    return [
        [cell.strip() for cell in line.strip("│┃").split("│")]
        for line in output.splitlines()
        if line.startswith("│")
    ]


def test_an_operator_onboards_a_company_with_the_pulse_command(
    live_backend: LiveBackend, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commands that change things run as real processes; the listings run in this one."""
    env = clean_env(PULSE_DATABASE_URL=live_backend.settings.database_url or "")
    monkeypatch.setenv("PULSE_DATABASE_URL", env["PULSE_DATABASE_URL"])

    def listing(*args: str) -> list[list[str]]:
        assert main(list(args)) == 0
        return table_rows(capsys.readouterr().out)

    added = run_pulse("marketer", "add", "Initech Travel", env=env)
    assert added.returncode == 0, added.stderr
    marketer_id = int(added.stdout)
    marketers = listing("marketer", "list")
    assert [str(marketer_id), "Initech Travel", "0", "0"] in marketers
    assert any(row[1] == "Acme Outdoor" and int(row[3]) >= 5 for row in marketers)

    user = run_pulse(
        "user", "add", ANN, "--marketer", str(marketer_id), "--role", "admin",
        "--name", "Ann Admin", env={**env, "PULSE_PASSWORD": "ann-is-admin-42"},
    )  # fmt: skip
    assert user.returncode == 0, user.stderr
    ann_id = int(user.stdout)
    login = live_backend.login(ANN, "ann-is-admin-42")
    assert login["user"]["id"] == ann_id
    assert (login["user"]["marketer_id"], login["user"]["role"]) == (marketer_id, "admin")

    assert listing("user", "list", "--marketer", str(marketer_id)) == [
        [str(ann_id), ANN, "Ann Admin", f"Initech Travel ({marketer_id})", "admin", "no"]
    ]

    passwd = run_pulse("user", "passwd", ANN, env={**env, "PULSE_PASSWORD": "ann-new-pass-43"})
    assert passwd.returncode == 0, passwd.stderr
    old_token = {"Authorization": f"Bearer {login['access_token']}"}
    assert httpx.get(f"{live_backend.url}/api/me", headers=old_token).status_code == 401
    assert live_backend.login(ANN, "ann-new-pass-43")["user"]["id"] == ann_id

    entries: list[AuditView] = audit_entries(live_backend, marketer_id)
    assert [str(entry.action) for entry in entries if entry.actor.kind.value == "system"] == [
        "marketer_created",
        "user_created",
        "password_changed",
    ]
    assert {entry.actor.name for entry in entries if entry.actor.kind.value == "system"} == {
        "pulse command"
    }


@pytest.fixture
def pulse_env(demo_database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`pulse` run in this process on a demo database."""
    monkeypatch.setenv("PULSE_DATABASE_URL", demo_database_url)
    monkeypatch.setenv("PULSE_PASSWORD", "long-enough-1")
    yield


BAD_INPUT = [
    (["user", "add", "x@acme.example", "--marketer", "999999", "--role", "admin"], "marketer"),
    (["user", "add", "x@acme.example", "--marketer", "one", "--role", "admin"], "--marketer"),
    (["user", "add", "x@acme.example", "--marketer", "ACME", "--role", "boss"], "role"),
    (["user", "add", "not-an-email", "--marketer", "ACME", "--role", "admin"], "email"),
    (["user", "add", "ALICE@acme.example", "--marketer", "ACME", "--role", "admin"], "taken"),
    (["user", "disable", "nobody@acme.example"], "no user"),
    (["user", "passwd", "nobody@acme.example"], "no user"),
    (["user", "disable", CAROL], "last admin"),
    (["user", "list", "--marketer", "999999"], "marketer"),
    (["marketer", "add", "  "], "name"),
    (["marketer", "add", "acme outdoor"], "already exists"),
]


def test_bad_input_exits_2_with_one_line_that_says_what_to_fix(
    pulse_env: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(args: list[str]) -> str:
        assert main(args) == 2, args
        out, err = capsys.readouterr()
        assert out == "" and len(err.strip().splitlines()) == 1, (args, err)
        return err

    assert main(["marketer", "list"]) == 0
    acme = next(row[0] for row in table_rows(capsys.readouterr().out) if row[1] == "Acme Outdoor")
    for args, words in BAD_INPUT:
        args = [acme if arg == "ACME" else arg for arg in args]
        assert words in refused(args), args

    monkeypatch.setenv("PULSE_PASSWORD", "seven77")
    assert "at least 8" in refused(
        ["user", "add", "y@acme.example", "--marketer", acme, "--role", "viewer"]
    )

    monkeypatch.delenv("PULSE_PASSWORD")
    typed = iter(["first-password", "other-password"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(typed))
    assert "differ" in refused(["user", "passwd", CAROL])

    # A real process: the status and the single line hold outside this test's process too.
    env = clean_env(PULSE_DATABASE_URL=os.environ["PULSE_DATABASE_URL"])
    result = run_pulse("user", "add", "z@acme.example", "--marketer", acme, "--role", "x", env=env)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
