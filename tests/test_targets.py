"""Traits and targets over REST: a manager builds a target from trait groups; bad input is a 422."""

from __future__ import annotations

from typing import Any

import httpx

from tests.backend import ALICE, BOB, CAROL, DAVE, LiveBackend


def trait_ids(traits: list[dict[str, Any]], group: str, *names: str) -> tuple[int, list[int]]:
    """The id of a trait group and of some of its traits, by name."""
    found = next(g for g in traits if g["name"] == group)
    by_name = {t["name"]: t["id"] for t in found["traits"]}
    return found["id"], [by_name[name] for name in names]


def target_body(traits: list[dict[str, Any]], title: str = "Weekend cyclists") -> dict[str, Any]:
    interests, interest_ids = trait_ids(traits, "Interests", "Cycling", "Fitness")
    region, region_ids = trait_ids(traits, "Region", "West")
    return {
        "title": title,
        "groups": [
            {"trait_group_id": interests, "trait_ids": interest_ids},
            {"trait_group_id": region, "trait_ids": region_ids},
        ],
    }


def create_target(client: httpx.Client, title: str = "Weekend cyclists") -> dict[str, Any]:
    response = client.post(
        "/api/targets", json=target_body(client.get("/api/traits").json(), title)
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def error_fields(response: httpx.Response) -> list[list[Any]]:
    assert response.status_code == 422, response.text
    return [error["loc"] for error in response.json()["detail"]]


def test_manager_creates_a_target_with_one_band_per_group_and_bad_input_names_the_field(
    live_backend: LiveBackend,
) -> None:
    with live_backend.client(BOB) as bob:
        traits = bob.get("/api/traits").json()
        assert {g["name"] for g in traits} >= {"Age", "Region", "Interests", "Household"}
        assert all(g["traits"] and set(g["traits"][0]) == {"id", "name"} for g in traits)
        body = target_body(traits)

        target = create_target(bob)
        assert target["title"] == "Weekend cyclists"
        assert target["population_status"] == "not_populated"
        assert [(b["level"], b["name"], b["population"]) for b in target["bands"]] == [
            (0, "Bullseye", 0),
            (1, "Ring 1", 0),
        ]
        assert target["groups"] == [
            {"trait_group_id": g["trait_group_id"], "trait_ids": sorted(g["trait_ids"])}
            for g in body["groups"]
        ]
        listed = {t["id"]: t for t in bob.get("/api/targets").json()}
        assert listed[target["id"]] == target
        assert {"Outdoor adventurers", "Young families outdoors"} <= {
            t["title"] for t in listed.values()
        }

        groups = body["groups"]
        interests, region = groups
        _, (young,) = trait_ids(traits, "Age", "18-24")
        bad: list[tuple[tuple[str | int, ...], dict[str, Any]]] = [
            (("title",), {**body, "title": "  "}),
            (("title",), {**body, "title": "x" * 201}),
            (("groups",), {**body, "groups": []}),
            (("groups", 0, "trait_ids"), {**body, "groups": [{**interests, "trait_ids": []}]}),
            (
                ("groups", 1, "trait_group_id"),
                {**body, "groups": [interests, {"trait_group_id": 987654, "trait_ids": [young]}]},
            ),
            (
                ("groups", 1, "trait_ids", 1),
                {
                    **body,
                    "groups": [interests, {**region, "trait_ids": [*region["trait_ids"], young]}],
                },
            ),
            (("groups", 1, "trait_group_id"), {**body, "groups": [interests, interests]}),
        ]
        for field, wrong in bad:
            assert ["body", *field] in error_fields(bob.post("/api/targets", json=wrong)), field
        assert [t["id"] for t in bob.get("/api/targets").json()].count(target["id"]) == 1
        assert len(bob.get("/api/targets").json()) == len(listed)

    with live_backend.client(DAVE) as dave:
        assert dave.get("/api/targets").status_code == 200
        denied = dave.post("/api/targets", json=body)
        assert denied.status_code == 403
        assert "viewer" in denied.json()["detail"]
    with live_backend.client(CAROL) as carol:
        assert target["id"] not in {t["id"] for t in carol.get("/api/targets").json()}
    with live_backend.client(ALICE) as alice:
        entries = alice.get("/api/audit").json()
        created = [e for e in entries if e["action"] == "target_created"]
        assert len(created) == 1
        assert created[0]["actor"]["name"] == "Bob Baker"
        assert created[0]["detail"]["target_id"] == target["id"]
