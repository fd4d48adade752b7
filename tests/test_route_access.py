"""Every REST route, walked with every role and with another marketer's admin.

The table below names, for each route of the app, who may call it. A route added without an
entry here fails `test_the_table_covers_every_route`, so no route escapes the walk. Allowed
calls are made so that they change nothing that matters (an archived campaign answers 409,
an incomplete body 422): what is checked is who gets through, not what the action does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from pulse_core.config import Settings
from tests.backend import ALICE, BOB, CAROL, DAVE, LiveBackend
from tests.conftest import TEST_SECRET

ANYONE, USER, MANAGER, ADMIN, INGEST_KEY = "anyone", "user", "manager", "admin", "ingest key"
RANK = {USER: 0, MANAGER: 1, ADMIN: 2}
ROLE_OF = {DAVE: "viewer", BOB: MANAGER, ALICE: ADMIN}
ROLE_RANK = {"viewer": -1, MANAGER: 1, ADMIN: 2}
DENIED = {401, 403, 404}


@dataclass(frozen=True)
class Route:
    who: str
    # True when the route names one of the marketer's things (campaign, user, topic):
    # another marketer's admin gets 404 for it, exactly as for a thing that does not exist.
    scoped: bool = False
    body: Any = None
    query: dict[str, str] | None = None


ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/api"): Route(ANYONE),
    ("POST", "/api/auth/login"): Route(ANYONE),
    ("POST", "/api/auth/logout"): Route(USER),
    ("GET", "/api/me"): Route(USER),
    ("POST", "/api/me/password"): Route(
        USER, body={"current_password": "not-the-password", "new_password": "whatever-1234"}
    ),
    ("GET", "/api/me/notifications"): Route(USER),
    ("PUT", "/api/me/notifications"): Route(USER, body={"email": False}),
    ("GET", "/api/users"): Route(ADMIN),
    ("POST", "/api/users"): Route(ADMIN, body={}),
    ("PATCH", "/api/users/{}"): Route(ADMIN, scoped=True, body={"role": "viewer"}),
    ("GET", "/api/traits"): Route(USER),
    ("GET", "/api/targets"): Route(USER),
    ("POST", "/api/targets"): Route(MANAGER, body={}),
    ("GET", "/api/campaigns"): Route(USER),
    ("POST", "/api/campaigns"): Route(MANAGER, body={}),
    ("GET", "/api/campaigns/{}"): Route(USER, scoped=True),
    ("PATCH", "/api/campaigns/{}"): Route(MANAGER, scoped=True, body={"description": "walked"}),
    ("POST", "/api/campaigns/{}/launch"): Route(MANAGER, scoped=True),
    ("POST", "/api/campaigns/{}/refresh-offers"): Route(MANAGER, scoped=True),
    ("POST", "/api/campaigns/{}/pause"): Route(MANAGER, scoped=True),
    ("POST", "/api/campaigns/{}/resume"): Route(MANAGER, scoped=True),
    ("POST", "/api/campaigns/{}/archive"): Route(MANAGER, scoped=True),
    ("POST", "/api/campaigns/{}/deposits"): Route(
        ADMIN, scoped=True, body={"amount_cents": 1, "note": "walked"}
    ),
    ("GET", "/api/audit"): Route(USER),
    ("GET", "/api/events"): Route(USER, scoped=True, query={"topic": "campaign:{campaign}"}),
    ("GET", "/api/ingest/offers"): Route(INGEST_KEY),
    ("POST", "/api/ingest/ad-events"): Route(INGEST_KEY, body={"events": []}),
}


def _app_routes() -> set[tuple[str, str]]:
    """Every REST route of the app, from the OpenAPI document it serves."""
    from server.app import create_app

    app = create_app(Settings(secret_key=TEST_SECRET, redis_url="redis://127.0.0.1:1/0"))
    return {
        (method.upper(), re.sub(r"\{[^}]+\}", "{}", path))
        for path, operations in app.openapi()["paths"].items()
        if path == "/api" or path.startswith("/api/")
        for method in operations
    }


def test_the_table_covers_every_route() -> None:
    assert _app_routes() == set(ROUTES)


def _call(
    http: httpx.Client,
    token: str | None,
    method: str,
    path: str,
    route: Route,
    ids: dict[str, int],
) -> httpx.Response:
    target = ids["user"] if path.startswith("/api/users/") else ids["campaign"]
    query = {k: v.format(campaign=ids["campaign"]) for k, v in (route.query or {}).items()}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return http.request(
        method, path.replace("{}", str(target)), headers=headers, params=query, json=route.body
    )


@pytest.fixture
def acme_ids(live_backend: LiveBackend) -> dict[str, int]:
    """Acme's archived campaign (every action on it is refused by state, not by role) and dave."""
    with live_backend.client(ALICE) as alice:
        campaigns = alice.get("/api/campaigns").json()
        users = {user["email"]: user["id"] for user in alice.get("/api/users").json()}
    archived = next(c["id"] for c in campaigns if c["state"] == "archived")
    return {"campaign": archived, "user": users[DAVE]}


def test_every_route_lets_in_exactly_the_roles_it_names(
    live_backend: LiveBackend, acme_ids: dict[str, int]
) -> None:
    walked: list[tuple[str, str, str, int]] = []
    http = httpx.Client(base_url=live_backend.url, timeout=10)
    for (method, path), route in ROUTES.items():
        if path == "/api/auth/logout":
            continue  # walked last, below: it ends the token
        anonymous = _call(http, None, method, path, route, acme_ids)
        if route.who == ANYONE:
            assert anonymous.status_code not in (401, 403), (method, path)
        else:
            assert anonymous.status_code == 401, (method, path, anonymous.text)
        for email, role in ROLE_OF.items():
            response = _call(http, live_backend.token(email), method, path, route, acme_ids)
            walked.append((method, path, role, response.status_code))
            assert response.status_code != 500, (method, path, role, response.text)
            if route.who == INGEST_KEY:
                assert response.status_code == 401, (method, path, role)
            elif route.who in (ANYONE, USER) or ROLE_RANK[role] >= RANK[route.who]:
                assert response.status_code not in DENIED, (method, path, role, response.text)
            else:
                assert response.status_code == 403, (method, path, role, response.text)
                assert role in response.json()["detail"], response.text
        if route.scoped:
            response = _call(http, live_backend.token(CAROL), method, path, route, acme_ids)
            assert response.status_code == 404, (method, path, "other marketer", response.text)
            assert "Acme" not in response.text
    assert len(walked) == 3 * (len(ROUTES) - 1)

    for email in (*ROLE_OF, CAROL):
        token = live_backend.login(email)["access_token"]
        logout = ROUTES[("POST", "/api/auth/logout")]
        ended = _call(http, token, "POST", "/api/auth/logout", logout, acme_ids)
        assert ended.status_code == 204
        assert http.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    http.close()


def test_another_marketers_admin_sees_none_of_acme_in_lists(
    live_backend: LiveBackend, acme_ids: dict[str, int]
) -> None:
    with live_backend.client(ALICE) as alice:
        acme_emails = {user["email"] for user in alice.get("/api/users").json()}
        acme_targets = {target["id"] for target in alice.get("/api/targets").json()}
    with live_backend.client(CAROL) as carol:
        assert {u["email"] for u in carol.get("/api/users").json()}.isdisjoint(acme_emails)
        assert {t["id"] for t in carol.get("/api/targets").json()}.isdisjoint(acme_targets)
        audit = carol.get("/api/audit", params={"campaign_id": acme_ids["campaign"]})
        assert audit.status_code == 404 or audit.json() == []
        assert all("acme" not in str(entry).lower() for entry in carol.get("/api/audit").json())
