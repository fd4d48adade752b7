"""Users over REST: an admin manages the marketer's users, nobody else may; a user changes their
own password and their other sessions end at once (REST 401, WebSocket closed with 4401)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from pulse_data import audit
from pulse_data.audit import AuditView
from pulse_data.database import Database
from tests.backend import ALICE, BOB, CAROL, DAVE, DEMO_PASSWORD, LiveBackend
from tests.conftest import run_in_new_loop
from tests.wsclient import WsClient

ERIN = "erin@acme.example"
ERIN_PASSWORD = "erin-password-1"


def audit_entries(backend: LiveBackend, marketer_id: int) -> list[AuditView]:
    async def read() -> list[AuditView]:
        db = Database(backend.settings.database_url or "", pool_size=1)
        try:
            async with db.reader() as session:
                return await audit.entries(session, marketer_id, limit=1000)
        finally:
            await db.dispose()

    return run_in_new_loop(read)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_an_admin_manages_the_marketers_users_and_nobody_else_may(
    live_backend: LiveBackend,
) -> None:
    url = live_backend.url
    with live_backend.client(ALICE) as alice:
        listed = alice.get("/api/users")
        assert listed.status_code == 200
        users = {user["email"]: user for user in listed.json()}
        assert set(users) == {ALICE, BOB, DAVE}
        assert (users[ALICE]["role"], users[BOB]["role"], users[DAVE]["role"]) == (
            "admin",
            "manager",
            "viewer",
        )
        assert not any(user["disabled"] for user in users.values())
        acme = users[ALICE]["marketer_id"]

        new = {"email": "Erin@Acme.example", "name": "Erin", "role": "manager"}
        created = alice.post("/api/users", json={**new, "password": ERIN_PASSWORD})
        assert created.status_code == 201, created.text
        erin = created.json()
        assert (erin["email"], erin["role"], erin["marketer_id"]) == (ERIN, "manager", acme)
        login = live_backend.login(ERIN, ERIN_PASSWORD)
        assert (login["user"]["role"], login["user"]["marketer_id"]) == ("manager", acme)

        for email in ("ERIN@acme.example", BOB):
            taken = alice.post("/api/users", json={**new, "email": email, "password": "x" * 8})
            assert taken.status_code == 409, taken.text
            assert "taken" in taken.json()["detail"]
        bad_role = alice.post("/api/users", json={**new, "email": "f@acme.example", "role": "boss"})
        assert bad_role.status_code == 422 and "role" in bad_role.text
        short = alice.post(
            "/api/users", json={**new, "email": "f@acme.example", "password": "seven77"}
        )
        assert short.status_code == 422
        assert "password" in short.json()["detail"] and "8" in short.json()["detail"]
        assert alice.patch(f"/api/users/{erin['id']}", json={"role": "boss"}).status_code == 422

        # Another marketer's users do not exist for this admin, and the other way round.
        carol_id = live_backend.login(CAROL)["user"]["id"]
        assert alice.patch(f"/api/users/{carol_id}", json={"role": "viewer"}).status_code == 404
        with live_backend.client(CAROL) as carol:
            assert (
                carol.patch(f"/api/users/{erin['id']}", json={"disabled": True}).status_code == 404
            )
            assert ERIN not in {user["email"] for user in carol.get("/api/users").json()}

        # The last enabled admin cannot be demoted or disabled; nothing changes.
        alice_id = users[ALICE]["id"]
        for change in ({"role": "manager"}, {"disabled": True}):
            refused = alice.patch(f"/api/users/{alice_id}", json=change)
            assert refused.status_code == 409, refused.text
            assert "last admin" in refused.json()["detail"]
        assert alice.get("/api/me").json()["role"] == "admin"

        promoted = alice.patch(f"/api/users/{erin['id']}", json={"role": "admin"})
        assert (promoted.status_code, promoted.json()["role"]) == (200, "admin")
        assert alice.patch(f"/api/users/{alice_id}", json={"role": "manager"}).status_code == 200
        # The new role holds from the very next request.
        assert alice.get("/api/users").status_code == 403

    for email in (BOB, DAVE):
        with live_backend.client(email) as other:
            assert other.get("/api/users").status_code == 403
            body = {**new, "email": "g@acme.example", "password": "x" * 8}
            assert other.post("/api/users", json=body).status_code == 403
            patch = other.patch(f"/api/users/{erin['id']}", json={"role": "viewer"})
            assert patch.status_code == 403 and "admin" in patch.json()["detail"]
    erin_token = login["access_token"]
    last = httpx.patch(
        f"{url}/api/users/{erin['id']}", json={"disabled": True}, headers=bearer(erin_token)
    )
    assert last.status_code == 409

    entries = audit_entries(live_backend, acme)
    by_action: dict[str, list[AuditView]] = {}
    for entry in entries:
        by_action.setdefault(str(entry.action), []).append(entry)
    (created_entry,) = by_action["user_created"]
    assert (created_entry.actor.kind.value, created_entry.actor.id) == ("user", alice_id)
    assert created_entry.detail["email"] == ERIN
    changes = [entry.detail["changes"] for entry in by_action["user_changed"]]
    assert {"role": {"from": "manager", "to": "admin"}} in changes
    assert {"role": {"from": "admin", "to": "manager"}} in changes
    assert not any(ERIN_PASSWORD in str(entry.detail) for entry in entries)
    assert not any("argon2" in str(entry.detail) for entry in entries)


async def closed_within(ws: WsClient, seconds: float) -> tuple[int | None, str, float]:
    """Read until the server closes the socket: (code, reason, seconds it took)."""
    started = time.monotonic()
    with pytest.raises(ConnectionClosed):
        while True:
            await ws.recv(timeout=seconds)
    return ws.connection.close_code, ws.connection.close_reason or "", time.monotonic() - started


async def test_a_password_change_ends_the_users_other_sessions_at_once(
    live_backend: LiveBackend,
) -> None:
    here = live_backend.login(BOB)
    there = live_backend.login(BOB)
    topic = f"marketer:{here['user']['marketer_id']}:campaigns"
    new_password = "bob-new-password-2"
    async with httpx.AsyncClient(base_url=live_backend.url) as http:

        async def change(body: dict[str, Any]) -> httpx.Response:
            return await http.post(
                "/api/me/password", json=body, headers=bearer(here["access_token"])
            )

        async with await WsClient.open(live_backend.ws_url, there["access_token"]) as ws:
            await ws.subscribe(topic)
            wrong = await change(
                {"current_password": "not-it-at-all", "new_password": new_password}
            )
            assert wrong.status_code == 400 and "current_password" in wrong.json()["detail"]
            short = await change({"current_password": DEMO_PASSWORD, "new_password": "short"})
            assert short.status_code == 422 and "new_password" in short.json()["detail"]
            await ws.send(type="ping")
            assert await ws.recv() == {"type": "pong"}  # nothing ended by the refusals

            done = await change({"current_password": DEMO_PASSWORD, "new_password": new_password})
            assert done.status_code == 204
            code, reason, seconds = await closed_within(ws, 5)
            assert code == 4401 and "password was changed" in reason, (code, reason)
            print(f"WebSocket of the other session closed {seconds:.2f} s after the change")

        other = await http.get("/api/me", headers=bearer(there["access_token"]))
        assert other.status_code == 401 and "password was changed" in other.json()["detail"]
        mine = await http.get("/api/me", headers=bearer(here["access_token"]))
        assert mine.status_code == 200
        async with await WsClient.open(live_backend.ws_url, here["access_token"]) as ws:
            await ws.subscribe(topic)

        async def login(password: str) -> int:
            response = await http.post("/api/auth/login", json={"email": BOB, "password": password})
            return response.status_code

        assert await login(DEMO_PASSWORD) == 401
        assert await login(new_password) == 200

    entries = await asyncio.to_thread(audit_entries, live_backend, here["user"]["marketer_id"])
    (changed,) = [entry for entry in entries if str(entry.action) == "password_changed"]
    assert changed.actor.id == here["user"]["id"]
    assert changed.detail["sessions_ended"] == 1
    assert new_password not in str(changed.detail)
