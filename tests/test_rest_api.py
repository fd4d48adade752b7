"""The REST contract: login, campaigns, actions, history and health, with their errors."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select, update
from starlette.requests import Request

from pulse_core import messages
from pulse_data.campaigns import campaign_listing, get_campaign
from pulse_data.database import Database
from pulse_data.models import Campaign, Marketer
from server.api.campaigns import campaign_out, json_answer, listing_json
from tests.backend import ALICE, CAROL, DEMO_PASSWORD, LiveBackend

STATS = {
    "target_population",
    "pending_offers",
    "current_offers",
    "pending_spend",
    "spend_to_date",
    "balance",
    "unique_reach",
    "banner_views",
    "text_jumps",
}


def test_login_returns_token_and_user(shared_backend: LiveBackend) -> None:
    body = shared_backend.login(ALICE)
    assert body["token_type"] == "bearer"
    assert body["access_token"]
    assert body["user"]["email"] == ALICE
    assert body["user"]["marketer_name"] == "Acme Outdoor"
    assert set(body["user"]) >= {"id", "email", "marketer_id"}


@pytest.mark.parametrize(
    ("email", "password"),
    [(ALICE, "wrong-password"), ("nobody@acme.example", DEMO_PASSWORD)],
)
def test_wrong_login_is_401(shared_backend: LiveBackend, email: str, password: str) -> None:
    response = httpx.post(
        f"{shared_backend.url}/api/auth/login", json={"email": email, "password": password}
    )
    assert response.status_code == 401
    assert response.json()["detail"] == "wrong email or password"


def test_login_attempts_are_rate_limited(live_backend: LiveBackend) -> None:
    attempts = live_backend.settings.login_attempts_per_minute
    statuses = [
        httpx.post(
            f"{live_backend.url}/api/auth/login",
            json={"email": "mallory@acme.example", "password": str(n)},
        ).status_code
        for n in range(attempts + 1)
    ]
    assert statuses == [401] * attempts + [429]


@pytest.mark.parametrize("body", [{}, {"email": ALICE}, {"email": 3, "password": []}, []])
def test_malformed_login_is_422(shared_backend: LiveBackend, body: object) -> None:
    response = httpx.post(f"{shared_backend.url}/api/auth/login", json=body)
    assert response.status_code == 422
    assert response.json()["detail"]


def test_campaigns_have_state_target_and_every_stat(shared_backend: LiveBackend) -> None:
    with shared_backend.client(ALICE) as alice:
        campaigns = alice.get("/api/campaigns").json()
    assert len(campaigns) >= 5
    assert {c["state"] for c in campaigns} == {"not_launched", "active", "archived"}
    for campaign in campaigns:
        assert set(campaign["stats"]) >= STATS
        assert set(campaign["target"]) >= {"id", "title", "population_status"}
        assert "launched_at" in campaign
        assert "deactivated_at" in campaign
    active = next(c for c in campaigns if c["state"] == "active")
    assert active["stats"]["target_population"] > 0
    assert active["stats"]["pending_offers"] + active["stats"]["current_offers"] > 0


async def test_the_campaign_list_says_what_each_campaigns_own_answer_says(
    demo_database_url: str,
) -> None:
    # The list is written without a model per campaign, each campaign with its model.
    db = Database(demo_database_url)
    try:
        async with db.writer() as session:  # a time on a whole second is written without .0
            whole_second = datetime(2027, 1, 1, 9, 30, tzinfo=UTC)
            await session.execute(
                update(Campaign).where(Campaign.id == 1).values(starts_at=whole_second)
            )
            await session.commit()
        async with db.reader() as session:
            for marketer_id in await session.scalars(select(Marketer.id)):
                listed = json.loads(listing_json(await campaign_listing(session, marketer_id)))
                assert listed
                for campaign in listed:
                    one = await get_campaign(session, marketer_id, campaign["id"])
                    assert campaign == campaign_out(one).model_dump(mode="json") | {"bids": None}
    finally:
        await db.dispose()


@pytest.mark.parametrize(
    ("accept_encoding", "size", "gzipped"),
    [("gzip, deflate", 40_000, True), ("br;q=1.0, gzip;q=0.5", 40_000, True),
     ("gzip;q=0", 40_000, False), ("identity", 40_000, False), ("gzip", 1_000, False)],
)  # fmt: skip
async def test_a_large_answer_goes_gzipped_to_a_client_that_accepts_it(
    accept_encoding: str, size: int, gzipped: bool
) -> None:
    body = json.dumps([{"title": f"Campaign {n}"} for n in range(size // 20)]).encode()[:size]
    request = Request({"type": "http", "headers": [(b"accept-encoding", accept_encoding.encode())]})
    answer = await json_answer(request, body)
    assert answer.headers.get("content-encoding") == ("gzip" if gzipped else None)
    assert (gzip.decompress(answer.body) if gzipped else answer.body) == body
    assert answer.headers["vary"] == "Accept-Encoding"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer forged"}, {"Authorization": "Basic YWxpY2U6eA=="}],
)
def test_routes_need_a_valid_token(shared_backend: LiveBackend, headers: dict[str, str]) -> None:
    for method, path in [
        ("GET", "/api/campaigns"),
        ("GET", "/api/campaigns/1"),
        ("POST", "/api/campaigns/1/launch"),
        ("POST", "/api/campaigns/1/refresh-offers"),
        ("GET", "/api/events?topic=campaign:1"),
        ("GET", "/api/me"),
        ("POST", "/api/campaigns"),
        ("PATCH", "/api/campaigns/1"),
        ("POST", "/api/campaigns/1/pause"),
        ("POST", "/api/campaigns/1/resume"),
        ("POST", "/api/campaigns/1/archive"),
        ("POST", "/api/campaigns/1/deposits"),
        ("GET", "/api/traits"),
        ("GET", "/api/targets"),
        ("POST", "/api/targets"),
        ("GET", "/api/audit"),
    ]:
        response = httpx.request(method, f"{shared_backend.url}{path}", headers=headers)
        assert response.status_code == 401, (method, path)
        assert response.json()["detail"]


def test_expired_token_is_401(shared_backend: LiveBackend) -> None:
    token = shared_backend.expired_token(ALICE)
    response = httpx.get(
        f"{shared_backend.url}/api/campaigns", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_other_marketers_campaigns_are_not_found(shared_backend: LiveBackend) -> None:
    with shared_backend.client(ALICE) as alice:
        acme_ids = {c["id"] for c in alice.get("/api/campaigns").json()}
    acme = shared_backend.login(ALICE)["user"]["marketer_id"]
    with shared_backend.client(CAROL) as carol:
        assert acme_ids.isdisjoint(c["id"] for c in carol.get("/api/campaigns").json())
        some = min(acme_ids)
        for method, path in [
            ("GET", f"/api/campaigns/{some}"),
            ("POST", f"/api/campaigns/{some}/launch"),
            ("POST", f"/api/campaigns/{some}/refresh-offers"),
            ("GET", f"/api/events?topic=campaign:{some}"),
            ("GET", f"/api/events?topic=marketer:{acme}:campaigns"),
        ]:
            assert carol.request(method, path).status_code == 404, (method, path)


def test_unknown_campaign_is_404_and_bad_ids_are_422(shared_backend: LiveBackend) -> None:
    with shared_backend.client(ALICE) as alice:
        assert alice.get("/api/campaigns/987654").status_code == 404
        assert alice.get("/api/campaigns/abc").status_code == 422
        assert alice.get("/api/campaigns/0").status_code == 422
        assert alice.get("/api/events", params={"topic": "weather"}).status_code == 422
        assert alice.get("/api/events").status_code == 422
        assert (
            alice.get("/api/events", params={"topic": "campaign:1", "limit": 0}).status_code == 422
        )


def test_actions_that_do_not_fit_the_state_are_409(shared_backend: LiveBackend) -> None:
    with shared_backend.client(ALICE) as alice:
        campaigns = alice.get("/api/campaigns").json()
        by_state = {c["state"]: c for c in campaigns}
        active, archived = by_state["active"], by_state["archived"]
        not_launched = by_state["not_launched"]
        for campaign in (active, archived):
            response = alice.post(f"/api/campaigns/{campaign['id']}/launch")
            assert response.status_code == 409
        refresh = alice.post(f"/api/campaigns/{not_launched['id']}/refresh-offers")
        assert refresh.status_code == 409
        assert refresh.json()["detail"] == messages.MUST_LAUNCH_FIRST
        assert alice.post(f"/api/campaigns/{archived['id']}/refresh-offers").status_code == 409


def test_launch_twice_is_409(live_backend: LiveBackend) -> None:
    with live_backend.client(ALICE) as alice:
        campaign = next(
            c for c in alice.get("/api/campaigns").json() if c["state"] == "not_launched"
        )
        assert alice.post(f"/api/campaigns/{campaign['id']}/launch").status_code == 202
        again = alice.post(f"/api/campaigns/{campaign['id']}/launch")
        assert again.status_code == 409
        assert again.json()["detail"] == messages.ALREADY_LAUNCHED


def test_health_and_readiness(shared_backend: LiveBackend) -> None:
    assert httpx.get(f"{shared_backend.url}/healthz").status_code == 200
    ready = httpx.get(f"{shared_backend.url}/readyz")
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert set(checks) >= {"database", "redis", "event_listener"}
    assert set(checks.values()) == {"ok"}


def test_a_campaign_says_which_marketer_topic_events_it_already_reflects(
    live_backend: LiveBackend,
) -> None:
    marketer = live_backend.login(ALICE)["user"]["marketer_id"]
    topic = f"marketer:{marketer}:campaigns"
    with live_backend.client(ALICE) as alice:
        campaign = next(
            c for c in alice.get("/api/campaigns").json() if c["state"] == "not_launched"
        )
        before = campaign["as_of_seq"]
        assert alice.post(f"/api/campaigns/{campaign['id']}/launch").status_code == 202
        events = alice.get("/api/events", params={"topic": topic, "after": before}).json()
        launched = next(
            e for e in events if e["campaign_id"] == campaign["id"] and e["reason"] == "launched"
        )
        after = alice.get(f"/api/campaigns/{campaign['id']}").json()
        assert after["state"] == "active"
        assert after["as_of_seq"] >= launched["seq"] > before
        listed = alice.get("/api/campaigns").json()
        assert len({c["as_of_seq"] for c in listed}) == 1
        assert listed[0]["as_of_seq"] >= after["as_of_seq"]
