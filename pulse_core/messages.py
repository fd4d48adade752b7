"""Texts users see in flashes and 409 answers, in one place (the seed's word for word)."""

from __future__ import annotations

LAUNCHED_POPULATING = "Campaign launched! Populating target and building offers..."
LAUNCHED_BUILDING = "Campaign launched! Building offers..."
TARGET_POPULATED = "Target populated! Creating offers..."
MUST_LAUNCH_FIRST = "Campaign must be launched first"
ALREADY_LAUNCHED = "Campaign is already launched"
ARCHIVED = "Campaign is archived"
PAUSED = "Campaign is paused"
ALREADY_PAUSED = "Campaign is already paused"
NOT_PAUSED = "Campaign is not paused"
ONLY_LAUNCHED_ARCHIVED = "Only an active or paused campaign can be archived"
BIDS_FIXED = "Bids cannot change once the campaign is launched"


def offers_created(count: int) -> str:
    return f"{count} offers created successfully"


def refreshing_offers(title: str) -> str:
    return f'Refreshing offers for "{title}"...'


def refresh_finished_nothing_new(title: str) -> str:
    return f'Offers for "{title}" are up to date: no new offers'
