"""The campaign and deposit forms' rules, the launch preview, role reasons and 'What changed?'
lines: plain Python, no Qt, no server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from desktop.client.access import CampaignAction, role_refusal, state_refusal
from desktop.client.campaign_forms import (
    BandChoice,
    BidInfo,
    CampaignForm,
    TargetChoice,
    bid_entries,
    create_body,
    deposit_body,
    field_key,
    parse_money,
    patch_body,
    validate,
    validate_deposit,
)
from desktop.client.history import describe
from desktop.client.launch_check import launch_preview
from desktop.client.models import Campaign
from pulse_core import messages
from pulse_core.roles import Role
from pulse_core.stats import CampaignStats, PopulationStatus
from tests.desktop.conftest import make_campaign, make_event

START = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)
BANDS = (BandChoice(11, 0, "Bullseye", 200), BandChoice(12, 1, "Ring 1", 800))
TARGET = TargetChoice(7, "Outdoor fans", PopulationStatus.POPULATED, BANDS)


def form(**changes: object) -> CampaignForm:
    entries = bid_entries(BANDS)
    entries[0].offer, entries[0].cost = "2.00", "1.50"
    entries[1].offer, entries[1].cost = "1.00", "0.75"
    values: dict[str, object] = {
        "title": "Spring Trail Sale",
        "description": "Boots",
        "target": TARGET,
        "starts_at": START,
        "ends_at": START + timedelta(days=30),
        "bids": entries,
    }
    values.update(changes)
    return CampaignForm(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "cents"),
    [("12", 1200), ("12.5", 1250), ("1,234.56", 123456), ("$3", 300), (" 0.07 ", 7), ("2,5", 250)],
)
def test_money_is_typed_with_cents(text: str, cents: int) -> None:
    assert parse_money(text) == cents


@pytest.mark.parametrize(
    ("text", "says"),
    [("", "Enter an amount"), ("1.005", "two decimals"), ("ten", "figures"), ("-1", "above 0")],
)
def test_bad_money_says_what_to_type(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_money(text)


def test_a_valid_form_becomes_the_create_body() -> None:
    assert validate(form()) == {}
    assert create_body(form(title="  Spring Trail Sale ")) == {
        "title": "Spring Trail Sale",
        "description": "Boots",
        "target_id": 7,
        "starts_at": "2030-03-01T09:00:00Z",
        "ends_at": "2030-03-31T09:00:00Z",
        "bids": [
            {"band_id": 11, "offer_amount_cents": 200, "marketer_cost_cents": 150},
            {"band_id": 12, "offer_amount_cents": 100, "marketer_cost_cents": 75},
        ],
    }


def test_the_server_rules_are_named_by_field() -> None:
    rising = form()
    rising.bids[1].cost = "1.51"
    rising.bids[0].offer = "0"
    errors = validate(rising)
    assert errors["bids.0.offer_amount_cents"] == "Must be above 0"
    assert "may not rise from the bullseye outward" in errors["bids.1.marketer_cost_cents"]
    assert "Bullseye's $1.50" in errors["bids.1.marketer_cost_cents"]
    assert validate(form(title="   "))["title"] == "Enter a title"
    assert "At most 200" in validate(form(title="x" * 201))["title"]
    assert validate(form(ends_at=START))["ends_at"] == "Must be after the start"
    assert validate(form(target=None, bids=[]))["target_id"] == "Choose a target"
    assert "At most 5,000" in validate(form(description="d" * 5001))["description"]
    locked = form(bids_locked=True)
    locked.bids[0].offer = "nonsense"  # a launched campaign's bids are not sent, nor checked
    assert validate(locked) == {}


def test_an_edit_sends_only_what_changed() -> None:
    original = form()
    assert patch_body(form(), original) == {}
    changed = form(title="Summer", ends_at=START + timedelta(days=40))
    changed.bids[1].offer = "0.90"
    body = patch_body(changed, original)
    assert body["title"] == "Summer"
    assert body["ends_at"] == "2030-04-10T09:00:00Z"
    assert body["bids"][1] == {"band_id": 12, "offer_amount_cents": 90, "marketer_cost_cents": 75}
    assert "bids" not in patch_body(form(title="Summer", bids_locked=True), original)


def test_a_422_location_names_the_form_field() -> None:
    assert field_key(["body", "bids", 1, "offer_amount_cents"]) == "bids.1.offer_amount_cents"
    assert field_key(("body", "title")) == "title"
    assert field_key(["body"]) == ""


def test_deposit_rules() -> None:
    assert validate_deposit("500", "") == {}
    assert deposit_body("500", "  ") == {"amount_cents": 50000}
    assert deposit_body("1,250.75", "Q2 budget") == {"amount_cents": 125075, "note": "Q2 budget"}
    assert validate_deposit("0", "")["amount_cents"] == "Must be above 0"
    assert "At most" in validate_deposit("10000000001", "")["amount_cents"]
    assert "At most 200" in validate_deposit("5", "n" * 201)["note"]


def populated(balance: float) -> Campaign:
    campaign = Campaign.from_wire(
        {
            "id": 5,
            "title": "Spring",
            "state": "not_launched",
            "target": {"id": 7, "title": "Outdoor fans", "population_status": "populated"},
            "stats": {
                "target_population": 1000,
                "balance": balance,
                "bands": [
                    {"band_id": 11, "level": 0, "name": "Bullseye", "population": 200},
                    {"band_id": 12, "level": 1, "name": "Ring 1", "population": 800},
                ],
            },
        }
    )
    return campaign


BIDS = (BidInfo(11, 0, 200, 150), BidInfo(12, 1, 100, 75))


def test_launch_preview_shows_audience_and_spend_as_the_server_computes_it() -> None:
    preview = launch_preview(populated(balance=5000.0), BIDS)
    assert preview.audience_count == 1000
    assert preview.spend_cents == 200 * 150 + 800 * 75
    rows = dict(preview.rows())
    assert rows["Audience"] == "1,000 members (Bullseye 200 · Ring 1 800)"
    assert rows["Spend at stake"].startswith("$900.00: one offer per member")
    assert rows["Balance"] == "$5,000.00"
    assert preview.warning == ""
    assert "more than the balance ($100.00)" in launch_preview(populated(100.0), BIDS).warning


def test_launch_preview_of_a_target_not_counted_yet() -> None:
    campaign = make_campaign(3, state="not_launched", population_status="not_populated")
    rows = dict(launch_preview(campaign, BIDS).rows())
    assert rows["Audience"].startswith("Not counted yet")
    assert rows["Spend at stake"] == (
        "Known once the audience is counted: up to $1.50 per member reached"
    )
    assert "could not be read" in dict(launch_preview(campaign, None).rows())["Spend at stake"]


def test_each_role_is_told_why_it_may_not() -> None:
    viewer = role_refusal(Role.VIEWER, CampaignAction.LAUNCH)
    assert viewer is not None and viewer.startswith("Your role (viewer) may not change campaigns")
    assert "ask a manager or an admin" in viewer
    manager = role_refusal(Role.MANAGER, CampaignAction.DEPOSIT)
    assert manager is not None and "ask an admin" in manager
    assert role_refusal(Role.MANAGER, CampaignAction.PAUSE) is None
    assert all(role_refusal(Role.ADMIN, action) is None for action in CampaignAction)
    assert all(role_refusal(None, action) is None for action in CampaignAction)
    draft = make_campaign(1, state="not_launched")
    assert state_refusal(CampaignAction.PAUSE, draft) == messages.MUST_LAUNCH_FIRST
    assert state_refusal(CampaignAction.ARCHIVE, draft) == messages.ONLY_LAUNCHED_ARCHIVED
    assert state_refusal(CampaignAction.EDIT, make_campaign(2, state="archived")) == (
        messages.ARCHIVED
    )
    assert state_refusal(CampaignAction.RESUME, make_campaign(3, state="paused")) is None


def test_what_changed_names_the_person() -> None:
    bob = {"id": 2, "name": "Bob Baker"}
    before = CampaignStats(balance=1000.0)
    after = CampaignStats(balance=1500.0)
    launched = make_event(1, 5, reason="launched", actor=bob)
    assert describe(launched, None) == "Launched by Bob Baker"
    paused = make_event(1, 6, reason="paused", actor=bob)
    assert describe(paused, None) == "Paused by Bob Baker"
    deposit = make_event(1, 7, reason="deposit", actor=bob, stats=after)
    assert describe(deposit, before).startswith("Deposit of $500.00 by Bob Baker: Balance")
    offers = make_event(1, 8, "offers_created", count=50, actor=bob)
    assert describe(offers, None) == "50 offers created (asked by Bob Baker)"
    assert describe(make_event(1, 9, reason="launched"), None) == "Campaign launched"
