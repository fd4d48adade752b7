"""`pulse apikey`: a key made on the command line works over REST until it is revoked; only its
hash is kept, and both steps are in the marketer's audit trail."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from sqlalchemy import select

from pulse_cli.main import main
from pulse_data import audit
from pulse_data.database import Database
from pulse_data.models import ApiKey
from tests.backend import ALICE, LiveBackend
from tests.conftest import run_in_new_loop


async def stored_keys_and_audit(url: str, marketer_id: int) -> tuple[list[ApiKey], list[str]]:
    db = Database(url)
    try:
        async with db.reader() as session:
            keys = list((await session.scalars(select(ApiKey))).all())
            entries = await audit.entries(session, marketer_id, limit=1000)
    finally:
        await db.dispose()
    return keys, [
        f"{e.actor.name}: {e.action} {e.detail}" for e in entries if "api_key" in str(e.action)
    ]


def test_a_key_made_on_the_command_line_works_over_rest_until_revoked(
    live_backend: LiveBackend, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULSE_DATABASE_URL", live_backend.settings.database_url or "")
    acme = live_backend.login(ALICE)["user"]["marketer_id"]
    capsys.readouterr()

    assert main(["apikey", "create", "--marketer", str(acme), "--name", "Acme ad server"]) == 0
    created = capsys.readouterr()
    key = created.out.strip()
    assert key.startswith("pk_") and len(key) > 40 and "\n" not in key
    assert "cannot be shown again" in created.err
    offers = f"{live_backend.url}/api/ingest/offers"
    assert httpx.get(offers, headers={"Authorization": f"Bearer {key}"}).status_code == 200

    assert main(["apikey", "list"]) == 0
    listing = capsys.readouterr().out
    assert "Acme ad server" in listing and key[:11] in listing and key not in listing
    keys, entries = run_in_new_loop(
        lambda: stored_keys_and_audit(live_backend.settings.database_url or "", acme)
    )
    [stored] = keys
    assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in str(vars(stored))

    assert main(["apikey", "revoke", str(stored.id)]) == 0
    assert httpx.get(offers, headers={"Authorization": f"Bearer {key}"}).status_code == 401
    assert main(["apikey", "list"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if key[:11] in line)
    assert row.count("UTC") == 2  # created, and now revoked
    _, entries = run_in_new_loop(
        lambda: stored_keys_and_audit(live_backend.settings.database_url or "", acme)
    )
    assert [entry.split(" {")[0] for entry in entries] == [
        "pulse command: api_key_created",
        "pulse command: api_key_revoked",
    ]
    assert all(key[:11] in entry and key not in entry for entry in entries)

    for bad in (
        ["apikey", "create", "--marketer", "999999", "--name", "x"],
        ["apikey", "create", "--marketer", "acme", "--name", "x"],
        ["apikey", "create", "--marketer", str(acme), "--name", " "],
        ["apikey", "revoke", "999999"],
        ["apikey", "revoke", "first"],
    ):
        assert main(bad) == 2, bad
        error = capsys.readouterr().err.strip()
        assert error.startswith("pulse: error:") and "\n" not in error, error
