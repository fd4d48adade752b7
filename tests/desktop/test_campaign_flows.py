"""Creating and running campaigns from the desktop app, against the real server and worker.

The flows are the same on either database, so these run on SQLite only (the server's own
tests cover PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from PySide6.QtWidgets import QMessageBox

from desktop.client.campaign_forms import cents_of
from desktop.ui.app import DesktopApp
from desktop.ui.grid import VIEWER_EMPTY_TEXT
from pulse_core.stats import CampaignState, PopulationStatus
from tests.backend import ALICE, BOB, DAVE, LiveBackend
from tests.desktop.test_live_backend import SLOW, campaign_where, flashes, open_app

__all__ = ["open_app"]  # the fixture, shared with test_live_backend
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def launches_audited(backend: LiveBackend, app: DesktopApp, campaign_id: int) -> int:
    """How many launches of the campaign the server's audit trail holds."""
    token = app.bridge.session.rest.token
    answer = httpx.get(
        f"{backend.url}/api/audit",
        params={"campaign_id": campaign_id},
        headers={"Authorization": f"Bearer {token}"},
    )
    answer.raise_for_status()
    return sum(1 for entry in answer.json() if entry["action"] == "launch")


def test_a_campaign_made_in_the_new_dialog_appears_in_another_users_grid(
    live_backend: LiveBackend, open_app: Callable[..., DesktopApp], qtbot: Any
) -> None:
    alice = open_app(live_backend.url, ALICE)
    bob = open_app(live_backend.url, BOB)
    reloads: list[object] = []
    bob.bridge.campaignsLoaded.connect(reloads.append)
    window = alice.window
    assert window.campaign_actions.new.isEnabled()
    window.campaign_actions.new.trigger()
    dialog = window.flows.dialog
    qtbot.waitUntil(lambda: dialog.loaded and bool(dialog.rows), timeout=SLOW)
    dialog.title.setText("Desktop Launch Party")
    dialog.description.setPlainText("Made in the New Campaign dialog")
    for level, row in enumerate(dialog.rows):
        row.offer.setText(f"{4 - level:.2f}")
        row.cost.setText(f"{3 - level * 0.5:.2f}")
    assert dialog.ok_button.isEnabled(), dialog.shown_errors
    dialog.ok_button.click()
    qtbot.waitUntil(lambda: window.flows.dialog is None, timeout=SLOW)

    def bobs_row() -> Any:
        return next((c for c in bob.window.store if c.title == "Desktop Launch Party"), None)

    qtbot.waitUntil(lambda: bobs_row() is not None, timeout=SLOW)
    row = bobs_row()
    assert row.state is CampaignState.NOT_LAUNCHED
    assert row.description == "Made in the New Campaign dialog"
    assert reloads == []  # the row came with the live event, not with a reload
    assert window.selected_campaign().id == row.id  # the creator's grid selects it
    assert "Campaign created" in flashes(alice)


def test_what_a_role_may_not_do_is_disabled_with_the_reason(
    live_backend: LiveBackend, open_app: Callable[..., DesktopApp], qtbot: Any
) -> None:
    dave = open_app(live_backend.url, DAVE)
    bob = open_app(live_backend.url, BOB)
    campaign = campaign_where(dave, CampaignState.ACTIVE, PopulationStatus.POPULATED)
    dave.window.select_campaign(campaign.id)
    actions = dave.window.campaign_actions
    for action in (actions.new, actions.launch, actions.pause, actions.deposit, actions.edit):
        assert not action.isEnabled(), action.text()
        assert "Your role (viewer) may not" in action.toolTip(), action.text()
    assert "ask a manager or an admin of your company" in actions.pause.toolTip()
    assert actions.details.isEnabled()
    assert dave.window.grid.empty_text == VIEWER_EMPTY_TEXT

    # Were a viewer's request sent anyway, the server's 403 is told as such.
    dave.window.commands.change_state(campaign, "pause")
    qtbot.waitUntil(
        lambda: any(t.startswith("You cannot pause the campaign: ") for t in flashes(dave)),
        timeout=SLOW,
    )
    assert any("your role (viewer) may not change campaigns" in t for t in flashes(dave))

    bob.window.select_campaign(campaign.id)
    manager = bob.window.campaign_actions
    assert manager.pause.isEnabled() and manager.edit.isEnabled() and manager.new.isEnabled()
    assert not manager.deposit.isEnabled()
    assert "Your role (manager) may not make deposits: ask an admin" in manager.deposit.toolTip()


def test_launch_asks_first_with_the_audience_and_the_spend_at_stake(
    live_backend: LiveBackend, open_app: Callable[..., DesktopApp], qtbot: Any
) -> None:
    alice = open_app(live_backend.url, ALICE)
    window = alice.window
    campaign = campaign_where(alice, CampaignState.NOT_LAUNCHED, PopulationStatus.POPULATED)
    window.select_campaign(campaign.id)
    window.launch_action.trigger()
    dialog = window.flows.dialog
    qtbot.waitUntil(lambda: dialog.loaded, timeout=SLOW)
    preview = dialog.preview
    assert preview.audience_count == campaign.stats.target_population > 0
    assert preview.spend_cents is not None and preview.spend_cents > 0
    assert dialog.values["Audience"].text().startswith(f"{preview.audience_count:,} members")
    assert dialog.values["Spend at stake"].text().startswith("$")
    assert dialog.values["Balance"].text().startswith("$")

    dialog.cancel_button.click()
    assert window.flows.dialog is None
    assert not window.commands.is_busy(campaign.id)
    assert launches_audited(live_backend, alice, campaign.id) == 0  # cancel sent nothing

    window.launch_action.trigger()
    window.flows.dialog.confirm()
    qtbot.waitUntil(lambda: window.store.get(campaign.id).stats.pending_offers > 0, timeout=SLOW)
    # The offers cost what the confirmation said was at stake.
    assert cents_of(window.store.get(campaign.id).stats.pending_spend) == preview.spend_cents
    assert launches_audited(live_backend, alice, campaign.id) == 1


def test_what_changed_names_who_paused_deposited_and_archived(
    live_backend: LiveBackend, open_app: Callable[..., DesktopApp], qtbot: Any
) -> None:
    alice = open_app(live_backend.url, ALICE)
    bob = open_app(live_backend.url, BOB)
    campaign = campaign_where(alice, CampaignState.ACTIVE, PopulationStatus.POPULATED)

    def alices_row() -> Any:
        return alice.window.store.get(campaign.id)

    bob.window.select_campaign(campaign.id)
    bob.window.campaign_actions.pause.trigger()
    qtbot.waitUntil(lambda: alices_row().state is CampaignState.PAUSED, timeout=SLOW)

    alice.window.select_campaign(campaign.id)
    alice.window.campaign_actions.deposit.trigger()
    deposit = alice.window.flows.dialog
    deposit.amount.setText("500")
    deposit.ok_button.click()
    balance = cents_of(campaign.stats.balance) + 50_000
    qtbot.waitUntil(lambda: cents_of(alices_row().stats.balance) == balance, timeout=SLOW)

    bob.window.select_campaign(campaign.id)
    qtbot.waitUntil(bob.window.campaign_actions.archive.isEnabled, timeout=SLOW)
    bob.window.campaign_actions.archive.trigger()
    question = bob.window.flows.dialog
    assert "cannot be undone" in question.informativeText()
    assert question.defaultButton() is question.button(QMessageBox.StandardButton.Cancel)
    next(b for b in question.buttons() if b.text() == "Archive").click()
    qtbot.waitUntil(lambda: alices_row().state is CampaignState.ARCHIVED, timeout=SLOW)

    view = alice.window.open_campaign(campaign.id)
    wanted = ["Paused by Bob Baker", "Deposit of $500.00 by Alice Archer", "Archived by Bob Baker"]

    def lines() -> list[str]:
        return [view.history.item(n).text() for n in range(view.history.count())]

    qtbot.waitUntil(lambda: all(any(w in line for line in lines()) for w in wanted), timeout=SLOW)
    view.close()
