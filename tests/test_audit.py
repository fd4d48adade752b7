"""The audit trail over REST: who did what to a campaign, oldest first, paged by `after`."""

from __future__ import annotations

from tests.backend import ALICE, BOB, CAROL, DAVE, LiveBackend
from tests.test_campaign_admin import create_campaign, first_in_state
from tests.test_targets import create_target


def test_audit_lists_each_action_with_its_actor_oldest_first_in_pages(
    live_backend: LiveBackend,
) -> None:
    bob_id = live_backend.login(BOB)["user"]["id"]
    alice_id = live_backend.login(ALICE)["user"]["id"]
    with live_backend.client(BOB) as bob, live_backend.client(ALICE) as alice:
        start = alice.get("/api/audit", params={"limit": 500}).json()
        after = start[-1]["id"] if start else 0
        target = create_target(bob)
        campaign = create_campaign(bob, target)
        path = f"/api/campaigns/{campaign['id']}"
        assert bob.patch(path, json={"title": "Renamed"}).status_code == 200
        assert alice.post(f"{path}/deposits", json={"amount_cents": 2_500}).status_code == 201
        assert bob.post(f"{path}/launch").status_code == 202
        for action in ("pause", "resume", "archive"):
            assert bob.post(f"{path}/{action}").status_code == 200
        assert bob.post(f"{path}/pause").status_code == 409  # refused: nothing to audit
        active = first_in_state(bob, "active")
        refresh = bob.post(f"/api/campaigns/{active['id']}/refresh-offers").json()

        trail = alice.get("/api/audit", params={"campaign_id": campaign["id"]}).json()
        assert [(e["action"], e["actor"]["id"]) for e in trail] == [
            ("campaign_created", bob_id),
            ("campaign_edited", bob_id),
            ("deposit", alice_id),
            ("launch", bob_id),
            ("paused", bob_id),
            ("resumed", bob_id),
            ("archived", bob_id),
        ]
        assert {e["campaign_id"] for e in trail} == {campaign["id"]}
        assert trail[0]["actor"] == {"kind": "user", "id": bob_id, "name": "Bob Baker"}
        assert trail[1]["detail"] == {"title": "Renamed"}
        assert trail[2]["detail"]["amount_cents"] == 2_500
        assert [e["id"] for e in trail] == sorted(e["id"] for e in trail)
        assert [e["at"] for e in trail] == sorted(e["at"] for e in trail)

        everything = alice.get("/api/audit", params={"after": after}).json()
        assert [e["action"] for e in everything][:2] == ["target_created", "campaign_created"]
        refreshed = everything[-1]
        assert (refreshed["action"], refreshed["campaign_id"]) == ("refresh_offers", active["id"])
        assert refreshed["detail"] == {"request_id": refresh["request_id"]}

        pages, cursor = [], after
        while page := alice.get("/api/audit", params={"after": cursor, "limit": 3}).json():
            assert len(page) <= 3
            pages.extend(page)
            cursor = page[-1]["id"]
        assert pages == everything

        assert alice.get("/api/audit", params={"limit": 501}).status_code == 422
        assert alice.get("/api/audit", params={"limit": 0}).status_code == 422
    with live_backend.client(DAVE) as dave:
        assert dave.get("/api/audit", params={"campaign_id": campaign["id"]}).json() == trail
    with live_backend.client(CAROL) as carol:
        assert carol.get("/api/audit", params={"campaign_id": campaign["id"]}).json() == []
        assert all(e["campaign_id"] != campaign["id"] for e in carol.get("/api/audit").json())
