"""End-to-end flows through the running server and worker: REST, jobs, Redis, WebSocket."""

from __future__ import annotations

from typing import Any

import httpx

from pulse_core import messages
from tests.backend import ALICE, BOB, LiveBackend
from tests.wsclient import WsClient, events_of


def campaign_in_state(client: httpx.Client, state: str, **target: Any) -> dict[str, Any]:
    for campaign in client.get("/api/campaigns").json():
        if campaign["state"] == state and all(
            campaign["target"][key] == value for key, value in target.items()
        ):
            return dict(campaign)
    raise AssertionError(f"the demo data has no {state} campaign with target {target}")


def marketer_topic(backend: LiveBackend, email: str) -> str:
    return f"marketer:{backend.login(email)['user']['marketer_id']}:campaigns"


async def test_seed_scenario_offers_created_arrives_on_campaign_topic(
    live_backend: LiveBackend,
) -> None:
    with live_backend.client(ALICE) as alice:
        campaign = campaign_in_state(alice, "not_launched", population_status="not_populated")
        async with await WsClient.open(live_backend.ws_url, live_backend.token(ALICE)) as ws:
            await ws.subscribe(f"campaign:{campaign['id']}")
            assert alice.post(f"/api/campaigns/{campaign['id']}/launch").status_code == 202
            frames = await ws.recv_until(lambda f: f.get("event") == "offers_created", timeout=5)
    created = events_of(frames, "offers_created")[0]
    assert created["campaign_id"] == campaign["id"]
    assert created["count"] > 0


async def test_launch_flashes_reach_two_users_of_one_marketer(live_backend: LiveBackend) -> None:
    topic = marketer_topic(live_backend, ALICE)
    with live_backend.client(ALICE) as alice:
        campaign = campaign_in_state(alice, "not_launched", population_status="not_populated")
        async with (
            await WsClient.open(live_backend.ws_url, live_backend.token(ALICE)) as alice_ws,
            await WsClient.open(live_backend.ws_url, live_backend.token(BOB)) as bob_ws,
        ):
            await alice_ws.subscribe(topic)
            await bob_ws.subscribe(topic)
            response = alice.post(f"/api/campaigns/{campaign['id']}/launch")
            assert response.status_code == 202
            assert response.json()["message"] == messages.LAUNCHED_POPULATING
            for ws in (alice_ws, bob_ws):
                frames = await ws.recv_until(lambda f: f.get("event") == "offers_created")
                mine = [f for f in events_of(frames) if f["campaign_id"] == campaign["id"]]
                names = [f["event"] for f in mine]
                assert names.index("target_populated") < names.index("offers_created")
                created = mine[-1]
                assert created["stats"]["pending_offers"] == created["count"] > 0
        after = alice.get(f"/api/campaigns/{campaign['id']}").json()
    assert after["state"] == "active"
    assert after["target"]["population_status"] == "populated"
    assert after["stats"]["pending_offers"] == created["count"]


async def test_refresh_reports_created_offers_then_nothing_new(live_backend: LiveBackend) -> None:
    with live_backend.client(ALICE) as alice:
        campaign = campaign_in_state(alice, "active", population_status="populated")
        async with await WsClient.open(live_backend.ws_url, live_backend.token(ALICE)) as ws:
            await ws.subscribe(f"campaign:{campaign['id']}")
            for _ in range(2):
                response = alice.post(f"/api/campaigns/{campaign['id']}/refresh-offers")
                assert response.status_code == 202
                body = response.json()
                assert body["message"] == messages.refreshing_offers(campaign["title"])
                frames = await ws.recv_until(
                    lambda f, rid=body["request_id"]: (
                        f.get("request_id") == rid and f["event"] == "campaign_updated"
                    )
                )
                finished = frames[-1]
                assert finished["reason"] == "offers_refreshed"
                # The refresh was Alice's doing: its events say so.
                assert finished["actor"]["name"] == "Alice Archer"
                created = events_of(frames, "offers_created")
                if finished["created"]:
                    assert created[-1]["count"] == finished["created"]
                else:
                    assert not [f for f in created if f.get("request_id") == body["request_id"]]
            # The second refresh found every member already offered.
            assert finished["created"] == 0


async def test_client_resumes_after_disconnect_without_gap_or_duplicate(
    live_backend: LiveBackend,
) -> None:
    topic = marketer_topic(live_backend, ALICE)
    with live_backend.client(ALICE) as alice:
        active = campaign_in_state(alice, "active")
        async with await WsClient.open(live_backend.ws_url, live_backend.token(ALICE)) as ws:
            subscribed = await ws.subscribe(topic)
            alice.post(f"/api/campaigns/{active['id']}/refresh-offers")
            frames = await ws.recv_until(lambda f: f.get("reason") == "offers_refreshed")
        last_seen = events_of(frames)[-1]["seq"]
        assert [f["seq"] for f in events_of(frames)] == list(
            range(subscribed["seq"] + 1, last_seen + 1)
        )
        # While the client is away, two more refreshes happen.
        missed_ids = [
            alice.post(f"/api/campaigns/{active['id']}/refresh-offers").json()["request_id"]
            for _ in range(2)
        ]
        async with await WsClient.open(live_backend.ws_url, live_backend.token(ALICE)) as ws:
            await ws.send(type="subscribe", topic=topic, after=last_seen)
            pending = set(missed_ids)

            def both_refreshes_done(frame: dict[str, Any]) -> bool:
                if frame.get("event") == "campaign_updated":
                    pending.discard(frame.get("request_id", ""))
                return not pending

            frames = await ws.recv_until(both_refreshes_done)
    assert frames[0]["type"] == "subscribed"
    seqs = [f["seq"] for f in events_of(frames)]
    assert seqs == list(range(last_seen + 1, last_seen + 1 + len(seqs)))
    assert {f.get("request_id") for f in events_of(frames)} >= set(missed_ids)
