"""The flash queue: readable, mergeable, bounded; and which events become flashes."""

from __future__ import annotations

from desktop.client.flashes import MAX_SECONDS, MIN_SECONDS, Flash, FlashQueue, flash_for_event
from pulse_core import messages

from .conftest import make_event


def test_first_flash_shows_at_once_and_others_wait_in_order() -> None:
    queue = FlashQueue()
    queue.push(Flash("one"))
    queue.push(Flash("two"))
    queue.push(Flash("three"))
    assert queue.current.text == "one"
    assert queue.waiting == 2
    assert queue.advance().text == "two"
    assert queue.advance().text == "three"
    assert queue.advance() is None


def test_repeats_of_the_same_message_merge_into_a_count() -> None:
    queue = FlashQueue()
    queue.push(Flash("Target populated! Creating offers...", campaign_id=1))
    queue.push(Flash("other", campaign_id=2))
    queue.push(Flash("Target populated! Creating offers...", campaign_id=1))
    queue.push(Flash("other", campaign_id=2))
    assert queue.current.repeats == 2
    assert queue.waiting == 1 and queue.waiting_flashes()[0].repeats == 2


def test_a_burst_keeps_the_newest_and_counts_what_it_skipped() -> None:
    queue = FlashQueue(max_waiting=5)
    for i in range(100):
        queue.push(Flash(f"message {i}"))
    assert queue.current.text == "message 0"
    assert [f.text for f in queue.waiting_flashes()] == [f"message {i}" for i in range(95, 100)]
    assert queue.skipped == 94
    assert len(queue.recent) == 100


def test_display_time_grows_with_length_within_bounds() -> None:
    assert Flash("short").display_seconds == MIN_SECONDS
    assert Flash("x" * 1000).display_seconds == MAX_SECONDS
    assert MIN_SECONDS <= Flash(messages.LAUNCHED_POPULATING).display_seconds <= MAX_SECONDS


def test_seed_events_become_the_seed_texts() -> None:
    populated = flash_for_event(make_event(1, 1, "target_populated"), "Spring", own_refresh=False)
    created = flash_for_event(make_event(1, 2, "offers_created", count=50), "S", own_refresh=False)
    assert populated.text == "Target populated! Creating offers..."
    assert populated.campaign_title == "Spring"
    assert created.text == "50 offers created successfully"
    assert flash_for_event(make_event(1, 3), "S", own_refresh=False) is None


def test_refresh_that_created_nothing_tells_only_the_user_who_asked() -> None:
    frame = make_event(1, 5, reason="offers_refreshed", created=0, request_id="r1")
    mine = flash_for_event(frame, "Spring", own_refresh=True)
    assert mine.text == messages.refresh_finished_nothing_new("Spring")
    assert flash_for_event(frame, "Spring", own_refresh=False) is None
    created = make_event(1, 6, reason="offers_refreshed", created=3, request_id="r2")
    assert flash_for_event(created, "Spring", own_refresh=True) is None  # offers_created says it
