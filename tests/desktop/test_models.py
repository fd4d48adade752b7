"""Campaigns as the grid reads them from the server's JSON."""

from __future__ import annotations

from dataclasses import fields

from desktop.client.models import Campaign
from desktop.client.rest import loads
from pulse_core.stats import BandCount, CampaignStats


def test_every_stat_of_a_campaign_reaches_its_row() -> None:
    stats = CampaignStats(
        **{f.name: n + 1 for n, f in enumerate(fields(CampaignStats)) if f.name != "bands"},
        bands=(BandCount(7, 0, "Bullseye", 12), BandCount(8, 1, "Ring 1", 30)),
    )
    body = {"id": 3, "title": "Spring", "state": "active", "stats": stats.to_wire()}

    assert Campaign.from_wire(body).stats == stats


def test_stats_the_client_does_not_know_are_left_out_and_missing_ones_are_zero() -> None:
    body = {"id": 3, "state": "active", "stats": {"balance": 12.5, "new_counter": 4}}

    assert Campaign.from_wire(body).stats == CampaignStats(balance=12.5)


def test_a_list_of_campaigns_parses_as_the_json_module_would() -> None:
    body = b'[{"id": 1, "title": "Caf\\u00e9 \xc3\xa9t\xc3\xa9", "stats": {"balance": 1.1}}]'

    (campaign,) = (Campaign.from_wire(item) for item in loads(body))

    assert (campaign.title, campaign.stats.balance) == ("Café été", 1.1)
