"""What a marketer does with campaigns over REST, on a real server and worker: create, edit,
launch, pause, resume, archive and deposit, each seen live by the other users of the marketer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from pulse_core import messages
from pulse_data.database import Database
from pulse_data.models import MemberTag, TargetTrait
from pulse_data.offers import activate_due_offers
from tests.backend import ALICE, BOB, CAROL, DAVE, LiveBackend
from tests.test_targets import create_target
from tests.wsclient import WsClient, events_of

START = datetime(2030, 5, 1, 9, 0, tzinfo=UTC)


def falling_bids(target: dict[str, Any], offer: int = 300, cost: int = 400) -> list[dict[str, int]]:
    """One bid per band of the target, each ring outward paying 100 cents less."""
    return [
        {
            "band_id": band["id"],
            "offer_amount_cents": offer - 100 * band["level"],
            "marketer_cost_cents": cost - 100 * band["level"],
        }
        for band in target["bands"]
    ]


def campaign_body(target: dict[str, Any], title: str = "Tour de West") -> dict[str, Any]:
    return {
        "title": title,
        "description": "Bikes for the long way round",
        "target_id": target["id"],
        "starts_at": START.isoformat(),
        "ends_at": (START + timedelta(days=30)).isoformat(),
        "bids": falling_bids(target),
    }


def create_campaign(client: httpx.Client, target: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/campaigns", json=campaign_body(target))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def first_in_state(client: httpx.Client, state: str) -> dict[str, Any]:
    campaign: dict[str, Any] = next(
        c for c in client.get("/api/campaigns").json() if c["state"] == state
    )
    return campaign


def error_fields(response: httpx.Response) -> list[list[Any]]:
    assert response.status_code == 422, response.text
    return [error["loc"] for error in response.json()["detail"]]


async def matching_members(url: str, target_id: int, group_traits: list[list[int]]) -> list[int]:
    """Members per band, counted in SQL apart from the product: bullseye matches every group,
    ring k every group but the last k; a group matches on any of its traits."""

    def matches(trait_ids: list[int]) -> Any:
        return select(MemberTag.member_id).where(MemberTag.trait_id.in_(trait_ids))

    db = Database(url)
    try:
        async with db.reader() as session:
            assert set(
                await session.scalars(
                    select(TargetTrait.trait_id).where(TargetTrait.target_id == target_id)
                )
            ) == {trait for traits in group_traits for trait in traits}
            counts = []
            for kept in range(len(group_traits), 0, -1):
                query = select(func.count(func.distinct(MemberTag.member_id)))
                for traits in group_traits[:kept]:
                    query = query.where(MemberTag.member_id.in_(matches(traits)))
                if kept < len(group_traits):
                    query = query.where(MemberTag.member_id.not_in(matches(group_traits[kept])))
                counts.append(int(await session.scalar(query) or 0))
            return counts
    finally:
        await db.dispose()


async def test_a_campaign_made_over_rest_reaches_every_grid_and_launches_like_the_seed(
    live_backend: LiveBackend,
) -> None:
    topic = f"marketer:{live_backend.login(ALICE)['user']['marketer_id']}:campaigns"
    bob_id = live_backend.login(BOB)["user"]["id"]
    with live_backend.client(BOB) as bob:
        target = create_target(bob)
        async with await WsClient.open(live_backend.ws_url, live_backend.token(ALICE)) as alice_ws:
            await alice_ws.subscribe(topic)
            created = create_campaign(bob, target)
            frames = await alice_ws.recv_until(lambda f: f.get("campaign_id") == created["id"])
            news = events_of(frames)[-1]
            assert (news["event"], news["reason"]) == ("campaign_updated", "created")
            assert news["actor"] == {"id": bob_id, "name": "Bob Baker"}
            assert news["stats"]["bands"][0]["name"] == "Bullseye"

            assert created["state"] == "not_launched"
            assert created["paused_at"] is None
            assert created["target"]["id"] == target["id"]
            assert created["starts_at"].startswith("2030-05-01T09:00:00")
            assert [b["offer_amount_cents"] for b in created["bids"]] == [300, 200]

            edited = bob.patch(
                f"/api/campaigns/{created['id']}",
                json={"title": "Tour de West 2030", "bids": falling_bids(target, 500, 600)},
            )
            assert edited.status_code == 200, edited.text
            assert edited.json()["title"] == "Tour de West 2030"
            assert [b["marketer_cost_cents"] for b in edited.json()["bids"]] == [600, 500]
            frames = await alice_ws.recv_until(lambda f: f.get("reason") == "edited")
            assert events_of(frames)[-1]["actor"]["name"] == "Bob Baker"

            launched = bob.post(f"/api/campaigns/{created['id']}/launch")
            assert launched.status_code == 202
            assert launched.json()["message"] == messages.LAUNCHED_POPULATING
            frames = await alice_ws.recv_until(
                lambda f: f.get("event") == "offers_created" and f["campaign_id"] == created["id"]
            )
        mine = [f for f in events_of(frames) if f["campaign_id"] == created["id"]]
        assert mine[0]["reason"] == "launched"
        assert mine[0]["actor"]["name"] == "Bob Baker"
        names = [f["event"] for f in mine]
        assert names.index("target_populated") < names.index("offers_created")
        offers = mine[-1]["count"]

        after = bob.get(f"/api/campaigns/{created['id']}").json()
        assert after["state"] == "active"
        assert after["target"]["population_status"] == "populated"
        assert after["stats"]["pending_offers"] == offers > 0
        bands = next(t for t in bob.get("/api/targets").json() if t["id"] == target["id"])["bands"]
        expected = await matching_members(
            live_backend.settings.database_url or "",
            target["id"],
            [group["trait_ids"] for group in target["groups"]],
        )
        assert [band["population"] for band in bands] == expected
        assert sum(expected) == offers

        late = bob.patch(f"/api/campaigns/{created['id']}", json={"bids": falling_bids(target)})
        assert late.status_code == 409
        assert late.json()["detail"] == messages.BIDS_FIXED
        renamed = bob.patch(f"/api/campaigns/{created['id']}", json={"description": "Now live"})
        assert renamed.status_code == 200
        assert renamed.json()["description"] == "Now live"


def test_bad_campaigns_are_422_naming_the_field_and_only_managers_write(
    live_backend: LiveBackend,
) -> None:
    with live_backend.client(BOB) as bob:
        target = create_target(bob)
        other_target = next(t for t in bob.get("/api/targets").json() if t["id"] != target["id"])
        body = campaign_body(target)
        inner, outer = body["bids"]
        bad: list[tuple[tuple[str | int, ...], dict[str, Any]]] = [
            (
                ("bids", 1, "offer_amount_cents"),
                {**body, "bids": [inner, {**outer, "offer_amount_cents": 301}]},
            ),
            (
                ("bids", 1, "marketer_cost_cents"),
                {**body, "bids": [inner, {**outer, "marketer_cost_cents": 401}]},
            ),
            (("bids",), {**body, "bids": [inner]}),
            (("bids", 1, "band_id"), {**body, "bids": [inner, inner]}),
            (
                ("bids", 2, "band_id"),
                {
                    **body,
                    "bids": [inner, outer, {**inner, "band_id": other_target["bands"][0]["id"]}],
                },
            ),
            (
                ("bids", 0, "offer_amount_cents"),
                {**body, "bids": [{**inner, "offer_amount_cents": 0}, outer]},
            ),
            (
                ("bids", 0, "marketer_cost_cents"),
                {**body, "bids": [{**inner, "marketer_cost_cents": 2.5}, outer]},
            ),
            (("ends_at",), {**body, "ends_at": body["starts_at"]}),
            (("title",), {**body, "title": ""}),
            (("target_id",), {**body, "target_id": "three"}),
        ]
        for field, wrong in bad:
            assert ["body", *field] in error_fields(bob.post("/api/campaigns", json=wrong)), field
        assert error_fields(
            bob.post("/api/campaigns", json={**body, "ends_at": "2030-04-01T00:00:00Z"})
        ) == [["body", "ends_at"]]
        with live_backend.client(CAROL) as carol:
            globex_target = carol.get("/api/targets").json()[0]
        for target_id in (globex_target["id"], 987654):
            missing = bob.post("/api/campaigns", json={**body, "target_id": target_id})
            assert missing.status_code == 404
            assert missing.json()["detail"] == f"target {target_id} not found"

        created = create_campaign(bob, target)
        path = f"/api/campaigns/{created['id']}"
        assert error_fields(bob.patch(path, json={"ends_at": "2030-04-30T00:00:00Z"})) == [
            ["body", "ends_at"]
        ]
        assert ["body", "title"] in error_fields(bob.patch(path, json={"title": None}))
        assert error_fields(bob.patch(path, json={}))
        assert ["body", "budget"] in error_fields(bob.patch(path, json={"budget": 5}))
        assert bob.get(path).json()["title"] == created["title"]
        assert bob.post(f"{path}/deposits", json={"amount_cents": 100}).status_code == 403

    writes = [
        ("POST", "/api/campaigns", body),
        ("PATCH", path, {"title": "Mine now"}),
        ("POST", f"{path}/launch", None),
        ("POST", f"{path}/refresh-offers", None),
        ("POST", f"{path}/pause", None),
        ("POST", f"{path}/resume", None),
        ("POST", f"{path}/archive", None),
        ("POST", f"{path}/deposits", {"amount_cents": 100}),
        ("POST", "/api/targets", {"title": "t", "groups": target["groups"]}),
    ]
    with live_backend.client(DAVE) as dave:
        for method, route, json in writes:
            response = dave.request(method, route, json=json)
            assert response.status_code == 403, (method, route, response.text)
            assert "viewer" in response.json()["detail"]
        assert dave.get(path).json()["state"] == "not_launched"
    with live_backend.client(CAROL) as carol:
        for method, route, json in writes[1:-1]:
            assert carol.request(method, route, json=json).status_code == 404, (method, route)
    with live_backend.client(ALICE) as alice:
        assert alice.get(path).json()["title"] == created["title"]


async def test_pause_holds_offers_back_until_resumed_then_archive_and_deposits(
    live_backend: LiveBackend,
) -> None:
    url = live_backend.settings.database_url or ""
    later = datetime.now(UTC) + timedelta(days=1)

    async def activate() -> None:
        db = Database(url)
        try:
            await activate_due_offers(db, None, later)
        finally:
            await db.dispose()

    with live_backend.client(BOB) as bob:
        active = first_in_state(bob, "active")
        path = f"/api/campaigns/{active['id']}"
        paused = bob.post(f"{path}/pause")
        assert paused.status_code == 200
        assert paused.json()["state"] == "paused"
        assert paused.json()["paused_at"]
        pending = paused.json()["stats"]["pending_offers"]
        assert pending > 0

        await activate()
        held = bob.get(path).json()
        assert held["state"] == "paused"
        assert held["stats"]["pending_offers"] == pending
        refresh = bob.post(f"{path}/refresh-offers")
        assert (refresh.status_code, refresh.json()["detail"]) == (409, messages.PAUSED)
        assert bob.post(f"{path}/launch").status_code == 409
        assert bob.post(f"{path}/pause").json()["detail"] == messages.ALREADY_PAUSED
        assert bob.patch(path, json={"title": "Paused title"}).status_code == 200

        resumed = bob.post(f"{path}/resume")
        assert (resumed.status_code, resumed.json()["state"]) == (200, "active")
        assert resumed.json()["paused_at"] is None
        assert bob.post(f"{path}/resume").json()["detail"] == messages.NOT_PAUSED
        await activate()
        live = bob.get(path).json()["stats"]
        assert live["pending_offers"] == 0
        assert live["current_offers"] > held["stats"]["current_offers"]

        with live_backend.client(ALICE) as alice:
            marketer = live_backend.login(ALICE)["user"]["marketer_id"]
            before = alice.get(path).json()["stats"]["balance"]
            async with await WsClient.open(live_backend.ws_url, live_backend.token(BOB)) as ws:
                await ws.subscribe(f"marketer:{marketer}:campaigns")
                made = alice.post(f"{path}/deposits", json={"amount_cents": 12_345, "note": "Q3"})
                frames = await ws.recv_until(lambda f: f.get("reason") == "deposit")
            assert made.status_code == 201, made.text
            assert made.json()["kind"] == "deposit"
            assert made.json()["note"] == "Q3"
            after = alice.get(path).json()["stats"]["balance"]
            assert round(after * 100) - round(before * 100) == 12_345
            assert made.json()["balance_cents"] == round(after * 100)
            assert events_of(frames)[-1]["actor"]["name"] == "Alice Archer"
            assert events_of(frames)[-1]["stats"]["balance"] == after
            for amount in (0, -5, 1.5, "100"):
                response = alice.post(f"{path}/deposits", json={"amount_cents": amount})
                assert ["body", "amount_cents"] in error_fields(response)
            assert alice.get(path).json()["stats"]["balance"] == after

        archived = bob.post(f"{path}/archive")
        assert (archived.status_code, archived.json()["state"]) == (200, "archived")
        for action in ("pause", "resume", "archive", "launch", "refresh-offers"):
            response = bob.post(f"{path}/{action}")
            assert (response.status_code, response.json()["detail"]) == (409, messages.ARCHIVED)
        assert bob.patch(path, json={"title": "Too late"}).status_code == 409
        with live_backend.client(ALICE) as alice:
            late = alice.post(f"{path}/deposits", json={"amount_cents": 100})
            assert (late.status_code, late.json()["detail"]) == (409, messages.ARCHIVED)

        waiting = first_in_state(bob, "not_launched")
        for action, detail in (
            ("pause", messages.MUST_LAUNCH_FIRST),
            ("resume", messages.NOT_PAUSED),
            ("archive", messages.ONLY_LAUNCHED_ARCHIVED),
        ):
            response = bob.post(f"/api/campaigns/{waiting['id']}/{action}")
            assert (response.status_code, response.json()["detail"]) == (409, detail)
        assert bob.post(f"/api/campaigns/{active['id']}/pause").status_code == 409
