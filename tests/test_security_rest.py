"""REST isolation and tokens, beyond test_rest_api.py: every route refuses expired, forged and
tampered tokens, and nothing of one marketer is reachable by another."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import httpx
import jwt

from server.security import ALGORITHM, AUDIENCE
from tests.backend import ALICE, BOB, CAROL, LiveBackend, read_unverified

PROTECTED = [
    ("GET", "/api/me"),
    ("GET", "/api/campaigns"),
    ("GET", "/api/campaigns/{id}"),
    ("POST", "/api/campaigns/{id}/launch"),
    ("POST", "/api/campaigns/{id}/refresh-offers"),
    ("GET", "/api/events?topic=campaign:{id}"),
]


def claims_of(backend: LiveBackend, email: str, **changes: object) -> dict[str, object]:
    """The claims of a valid token of a new session of the user (so only `changes` are wrong)."""
    login = backend.login(email)
    user = login["user"]
    claims: dict[str, object] = {
        "sub": str(user["id"]),
        "mkt": user["marketer_id"],
        "email": email,
        "sid": read_unverified(login["access_token"])["sid"],
        "aud": AUDIENCE,
        "exp": datetime.now(UTC) + timedelta(hours=1),
        "iat": datetime.now(UTC),
    }
    claims.update(changes)
    return claims


def bad_tokens(backend: LiveBackend) -> dict[str, str]:
    secret = backend.settings.secret_key or ""
    carol = backend.login(CAROL)["user"]
    carol_marketer = carol["marketer_id"]
    good = claims_of(backend, ALICE)

    def signed(**changes: object) -> str:
        """Signed with the deployment's real key: only the server's checks can refuse it."""
        return jwt.encode({**good, **changes}, secret, algorithm=ALGORITHM)

    return {
        "expired": backend.expired_token(ALICE),
        "signed with another key": jwt.encode(good, "another-secret-" * 4, algorithm=ALGORITHM),
        "unsigned (alg none)": _unsigned(good),
        "other audience": jwt.encode({**good, "aud": "someone-else"}, secret, algorithm=ALGORITHM),
        "no expiry": jwt.encode(
            {k: v for k, v in good.items() if k != "exp"}, secret, algorithm=ALGORITHM
        ),
        "marketer changed after signing": _tamper(
            jwt.encode(good, secret, algorithm=ALGORITHM), {**good, "mkt": carol_marketer}
        ),
        "garbage": "Bearer.Bearer.Bearer",
        "huge expiry, real key": signed(exp=10**20),
        "huge marketer id, real key": signed(mkt=10**30),
        "huge user id, real key": signed(sub=str(10**40)),
        "another user on alice's session, real key": signed(sub=str(carol["id"])),
        "another marketer on alice's session, real key": signed(mkt=carol_marketer),
        "no session, real key": jwt.encode(
            {k: v for k, v in good.items() if k != "sid"}, secret, algorithm=ALGORITHM
        ),
        "unknown session, real key": signed(sid="no-such-session"),
    }


def _unsigned(claims: dict[str, object]) -> str:
    """A token that says `alg: none` and carries no signature."""

    def part(data: dict[str, object]) -> str:
        text = json.dumps(data, default=lambda moment: int(moment.timestamp()))
        return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def _tamper(token: str, claims: dict[str, object]) -> str:
    """The token's signature on other claims."""
    header, _, signature = token.split(".")
    body = jwt.encode(claims, "whatever-key-" * 4, algorithm=ALGORITHM).split(".")[1]
    return f"{header}.{body}.{signature}"


def test_every_route_refuses_every_bad_token(shared_backend: LiveBackend) -> None:
    with shared_backend.client(ALICE) as alice:
        campaign_id = alice.get("/api/campaigns").json()[0]["id"]
    for kind, token in bad_tokens(shared_backend).items():
        for method, path in PROTECTED:
            response = httpx.request(
                method,
                shared_backend.url + path.format(id=campaign_id),
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 401, (kind, method, path, response.text)
            assert response.json()["detail"], (kind, path)
            assert response.headers.get("www-authenticate") == "Bearer"


def test_users_of_one_marketer_share_its_campaigns(shared_backend: LiveBackend) -> None:
    with shared_backend.client(ALICE) as alice, shared_backend.client(BOB) as bob:
        assert alice.get("/api/campaigns").json() == bob.get("/api/campaigns").json()


def test_no_route_reveals_another_marketers_campaigns(shared_backend: LiveBackend) -> None:
    with shared_backend.client(ALICE) as alice:
        acme = {c["id"] for c in alice.get("/api/campaigns").json()}
    with shared_backend.client(CAROL) as carol:
        globex = {c["id"] for c in carol.get("/api/campaigns").json()}
        assert globex and acme.isdisjoint(globex)
        for campaign_id in sorted(acme):
            for method, path in PROTECTED[2:]:
                response = carol.request(method, path.format(id=campaign_id))
                assert response.status_code == 404, (method, path)
                # Same answer as for a campaign that does not exist: nothing is revealed.
                assert str(campaign_id) in response.json()["detail"]
                assert "Acme" not in response.text
        # History after seq 0 of Acme's topics: also not found, and no event leaks.
        acme_marketer = shared_backend.login(ALICE)["user"]["marketer_id"]
        response = carol.get(
            "/api/events", params={"topic": f"marketer:{acme_marketer}:campaigns", "after": 0}
        )
        assert response.status_code == 404
        # Carol's own actions still work after all these refusals.
        assert carol.get("/api/campaigns").status_code == 200


def test_rate_limit_answers_429_with_retry_after(live_backend: LiveBackend) -> None:
    email = "ALICE@acme.example"  # the same person as alice@acme.example
    attempts = live_backend.settings.login_attempts_per_minute
    for n in range(attempts):
        httpx.post(
            f"{live_backend.url}/api/auth/login", json={"email": email, "password": f"no-{n}"}
        )
    # Even the right password is refused until the window passes: guessing cannot continue.
    refused = httpx.post(
        f"{live_backend.url}/api/auth/login", json={"email": email, "password": "pulse-demo"}
    )
    assert refused.status_code == 429
    assert "too many login attempts" in refused.json()["detail"]
    assert int(refused.headers["retry-after"]) > 0
    # Another user from the same address is not locked out.
    assert live_backend.login(CAROL)["access_token"]
