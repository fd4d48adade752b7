"""The campaign dialogs on their own (Qt offscreen, no server): rules shown inline before
anything is sent, a server's refusal next to its field, keyboard and accessible names."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QWidget,
)

from desktop.client.campaign_forms import BandChoice, TargetChoice
from desktop.client.errors import ForbiddenError, ValidationError
from desktop.ui.campaign_dialog import CampaignDialog
from desktop.ui.deposit_dialog import DepositDialog
from pulse_core.stats import PopulationStatus
from tests.desktop.conftest import make_campaign

TARGET = TargetChoice(
    7,
    "Outdoor fans",
    PopulationStatus.POPULATED,
    (BandChoice(11, 0, "Bullseye", 200), BandChoice(12, 1, "Ring 1", 800)),
)


def unnamed_controls(dialog: QWidget) -> list[str]:
    """Input controls without an accessible name (the inner editor of a spin box aside)."""
    kinds = (QLineEdit, QComboBox, QPlainTextEdit, QAbstractSpinBox, QPushButton)
    return [
        type(widget).__name__
        for widget in dialog.findChildren(QWidget)
        if isinstance(widget, kinds)
        and not isinstance(widget.parent(), QAbstractSpinBox | QComboBox)
        and not widget.accessibleName()
    ]


def test_new_campaign_dialog_blocks_an_empty_title_and_a_rising_bid_before_sending(
    qtbot: Any,
) -> None:
    sent: list[tuple[dict[str, Any], Any]] = []
    dialog = CampaignDialog(
        send=lambda body, done: sent.append((body, done)),
        load_targets=lambda done: done([TARGET], None),
    )
    qtbot.addWidget(dialog)
    dialog.show()
    assert unnamed_controls(dialog) == []
    assert [row.band.name for row in dialog.rows] == ["Bullseye", "Ring 1"]
    assert not dialog.ok_button.isEnabled()  # nothing typed yet
    dialog.title.setText("Spring")
    dialog.title.setText("")
    assert dialog.messages["title"].text() == "Enter a title"
    assert dialog.messages["title"].isVisible()
    dialog.title.setText("Spring Trail Sale")
    assert not dialog.messages["title"].isVisible()
    bullseye, ring = dialog.rows
    bullseye.offer.setText("2.00")
    bullseye.cost.setText("1.50")
    ring.offer.setText("3.00")  # more than the bullseye's offer
    ring.cost.setText("1.00")
    assert "may not rise from the bullseye outward" in ring.message.text()
    assert not dialog.ok_button.isEnabled()
    qtbot.keyClick(dialog, Qt.Key.Key_Return)  # Enter shows why instead of sending
    dialog.ok_button.click()
    assert sent == []
    ring.offer.setText("1.75")
    assert not ring.message.isVisible()
    assert dialog.ok_button.isEnabled()
    qtbot.keyClick(dialog, Qt.Key.Key_Return)  # Enter = OK once the form is valid
    assert len(sent) == 1
    body, done = sent[0]
    assert body["title"] == "Spring Trail Sale"
    assert body["bids"][1] == {"band_id": 12, "offer_amount_cents": 175, "marketer_cost_cents": 100}
    assert not dialog.ok_button.isEnabled()  # busy until the answer

    # The server's refusal goes next to the field it names, or on top.
    location = ("body", "bids", 1, "marketer_cost_cents")
    done(None, ValidationError("bad", status=422, problems=((location, "the server says no"),)))
    assert ring.message.text() == "Cost: the server says no"
    ring.cost.setText("0.90")  # editing the field clears the server's message
    assert not ring.message.isVisible()
    dialog.ok_button.click()
    sent[-1][1](None, ForbiddenError("your role (viewer) may not change campaigns", status=403))
    assert dialog.top_message.text() == (
        "You cannot create campaigns: your role (viewer) may not change campaigns"
    )
    assert dialog.isVisible()
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert not dialog.isVisible()


def test_edit_of_a_launched_campaign_keeps_its_bids_and_sends_only_the_change(
    qtbot: Any,
) -> None:
    from desktop.client.campaign_forms import BidInfo, CampaignDetails
    from desktop.client.models import Campaign

    launched = Campaign.from_wire(
        {
            "id": 4,
            "title": "Autumn",
            "state": "active",
            "launched_at": "2030-01-01T00:00:00Z",
            "starts_at": "2030-01-01T00:00:00Z",
            "ends_at": "2030-02-01T00:00:00Z",
            "target": {"id": 7, "title": "Outdoor fans", "population_status": "populated"},
            "stats": {"bands": [{"band_id": 11, "level": 0, "name": "Bullseye", "population": 5}]},
        }
    )
    details = CampaignDetails(launched, (BidInfo(11, 0, 300, 200),))
    sent: list[dict[str, Any]] = []
    dialog = CampaignDialog(
        send=lambda body, done: sent.append(body),
        load_details=lambda done: done(details, None),
        campaign=launched,
    )
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.rows[0].offer.text() == "3.00"
    assert not dialog.rows[0].offer.isEnabled()
    assert "cannot change once the campaign is launched" in dialog.bids_note.text()
    assert not dialog.target.isEnabled()
    dialog.title.setText("Autumn Trail")
    dialog.ok_button.click()
    assert sent == [{"title": "Autumn Trail"}]


def test_deposit_dialog_wants_an_amount_with_cents(qtbot: Any) -> None:
    sent: list[dict[str, Any]] = []
    campaign = make_campaign(1, "Spring")
    dialog = DepositDialog(campaign, lambda body, done: sent.append(body))
    qtbot.addWidget(dialog)
    dialog.show()
    assert unnamed_controls(dialog) == []
    assert not dialog.ok_button.isEnabled()
    dialog.amount.setText("12.345")
    assert "two decimals" in dialog.amount_message.text()
    dialog.amount.setText("500")
    assert dialog.balance.text() == "$0.00 → $500.00 after"
    qtbot.keyClick(dialog, Qt.Key.Key_Return)
    assert sent == [{"amount_cents": 50000}]
