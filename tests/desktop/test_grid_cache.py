"""The saved grid and the account list, without Qt or a server."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from desktop.client.accounts import Account, Accounts, session_end_message
from desktop.client.grid_cache import CachedGrid, GridCache, GridCursor, Memo
from desktop.client.models import UserSession
from pulse_core.roles import Role
from pulse_core.stats import BandCount, CampaignState, CampaignStats
from tests.desktop.conftest import make_campaign, make_event

URL = "http://pulse.example:8765"
ALICE = UserSession("secret-token", 1, "alice@acme.example", 1, "Acme Outdoor", Role.ADMIN)


def test_a_saved_grid_reads_back_the_same_without_its_token(tmp_path: Path) -> None:
    cache = GridCache(tmp_path)
    band = BandCount(band_id=3, level=0, name="Bullseye", population=80)
    campaigns = [
        make_campaign(1, "Spring Sale — été", state="paused", pending=5, as_of_seq=40),
        make_campaign(2, as_of_seq=None).with_stats(
            CampaignStats(banner_views=9, bands=(band,)), 41
        ),
    ]
    as_of = datetime(2026, 3, 2, 9, 12, tzinfo=UTC)
    cache.save(URL, CachedGrid(ALICE, 42, as_of, campaigns))
    saved = cache.load(URL, "Alice@acme.example")
    assert saved is not None
    assert saved.campaigns == campaigns and saved.seq == 42 and saved.as_of == as_of
    assert saved.user.token == "" and saved.user.role is Role.ADMIN
    assert saved.campaigns[0].state is CampaignState.PAUSED
    assert b"secret-token" not in cache.path(URL, ALICE.email).read_bytes()
    assert cache.load("http://other:8765", ALICE.email) is None
    assert [p.name for p in tmp_path.iterdir()] == [cache.path(URL, ALICE.email).name]


def test_a_write_encodes_again_only_the_rows_that_changed(tmp_path: Path) -> None:
    cache, memo = GridCache(tmp_path), Memo()
    campaigns = [make_campaign(n, as_of_seq=n) for n in range(1, 4)]
    as_of = datetime(2026, 3, 2, 9, 12, tzinfo=UTC)
    cache.save(URL, CachedGrid(ALICE, 3, as_of, campaigns), memo)
    first = dict(memo)
    campaigns[1] = campaigns[1].with_stats(CampaignStats(pending_offers=7), 4)
    cache.save(URL, CachedGrid(ALICE, 4, as_of, campaigns[:2]), memo)
    assert memo[1] is first[1] and memo[2] is not first[2] and 3 not in memo
    saved = cache.load(URL, ALICE.email)
    assert saved is not None and saved.campaigns == campaigns[:2] and saved.seq == 4


@pytest.mark.parametrize(
    "content", [b"{not json", b'{"version": 0, "campaigns": []}', b"[]", b'{"version": 1}']
)
def test_a_corrupt_or_old_file_is_ignored_with_a_log_line(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    cache = GridCache(tmp_path)
    cache.path(URL, ALICE.email).write_bytes(content)
    with caplog.at_level(logging.WARNING):
        assert cache.load(URL, ALICE.email) is None
    assert "ignoring the cached grid" in caplog.text


def test_the_cursor_stays_before_an_event_whose_fetch_has_not_answered() -> None:
    cursor = GridCursor()
    cursor.subscribed(10, resumed=False)
    assert cursor.seq == 10
    cursor.applied([make_event(7, 11), make_event(8, 12, reason="paused")], fetch={8})
    assert cursor.seq == 11  # campaign 8's new state is not in the grid yet
    cursor.fetched(make_campaign(8, as_of_seq=11))  # read before the pause: still waiting
    assert cursor.seq == 11
    cursor.fetched(make_campaign(8, as_of_seq=12))
    assert cursor.seq == 12
    cursor.subscribed(99, resumed=True)  # a resume replays from where the grid is
    assert cursor.seq == 12


def test_accounts_last_used_first_and_unreadable_entries_skipped() -> None:
    alice, carol = Account(URL, "alice@acme.example"), Account(URL, "carol@globex.example")
    accounts = Accounts().used(alice).used(carol).used(Account(URL, "ALICE@acme.example", "Acme"))
    assert [a.email for a in accounts] == ["ALICE@acme.example", "carol@globex.example"]
    again = Accounts.from_json(accounts.to_json()[:-1] + ', 7, {"email": 1}]')
    assert [a.label() for a in again] == ["Acme (ALICE@acme.example)", "carol@globex.example"]
    assert len(Accounts.from_json("not json")) == 0


def test_an_ended_session_is_told_apart_from_an_expired_token() -> None:
    assert session_end_message("your session has expired: log in again") is None
    assert session_end_message("invalid token: log in again") is None
    assert session_end_message("") is None
    ended = session_end_message("you logged out: log in again")
    assert ended is not None and ended.startswith("Your session ended: signed out elsewhere")
    disabled = session_end_message("your account is disabled: ask an admin of your company")
    assert disabled is not None and "ask an admin" in disabled
