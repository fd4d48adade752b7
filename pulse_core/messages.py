"""The flash texts of the original design, word for word, in one place."""

from __future__ import annotations

LAUNCHED_POPULATING = "Campaign launched! Populating target and building offers..."
LAUNCHED_BUILDING = "Campaign launched! Building offers..."
TARGET_POPULATED = "Target populated! Creating offers..."
MUST_LAUNCH_FIRST = "Campaign must be launched first"
ALREADY_LAUNCHED = "Campaign is already launched"
ARCHIVED = "Campaign is archived"


def offers_created(count: int) -> str:
    return f"{count} offers created successfully"


def refreshing_offers(title: str) -> str:
    return f'Refreshing offers for "{title}"...'


def refresh_finished_nothing_new(title: str) -> str:
    return f'Offers for "{title}" are up to date: no new offers'
