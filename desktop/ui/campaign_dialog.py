"""The New campaign and Edit campaign dialog: title, description, target, dates, a bid per band.

The server's rules (`desktop.client.campaign_forms`) are checked on every keystroke: a message
under each field that breaks one, and OK disabled until none does. A refusal from the server
(422 naming a field, 403, 409) is shown next to that field, or on top.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.client.access import forbidden_text
from desktop.client.campaign_forms import (
    BID_FIELDS,
    BandChoice,
    CampaignDetails,
    CampaignForm,
    Errors,
    TargetChoice,
    bid_entries,
    bid_key,
    create_body,
    field_key,
    patch_body,
    validate,
)
from desktop.client.errors import ClientError, ForbiddenError, NotFoundError, ValidationError
from desktop.client.models import Campaign
from desktop.ui.form_widgets import FieldMessage, MoneyEdit, date_time_edit, moment_of, set_moment
from pulse_core import messages
from pulse_core.stats import PopulationStatus

Done = Callable[[Any, BaseException | None], None]
Loader = Callable[[Done], None]  # load(done): done(result, error) later, in the GUI thread
Sender = Callable[[dict[str, Any], Done], None]  # send(body, done)

DEFAULT_DAYS = 30
FIELD_NAMES = {
    "title": "Title",
    "description": "Description",
    "target_id": "Target",
    "starts_at": "Starts",
    "ends_at": "Ends",
    "bids": "Bids",
}


class BidRow:
    """One band's line of the bids grid: its two amounts and what is wrong with them."""

    def __init__(self, band: BandChoice, populated: bool) -> None:
        self.band = band
        self.label = QLabel(f"{band.name}:")
        self.members = QLabel(f"{band.population:,}" if populated else "—")
        self.members.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.members.setAccessibleName(f"{band.name} members")
        self.offer = MoneyEdit(f"{band.name} offer to a member")
        self.cost = MoneyEdit(f"{band.name} marketer cost per offer")
        self.label.setBuddy(self.offer)
        self.message = FieldMessage(f"{band.name} bid problem")

    def edit(self, name: str) -> QLineEdit:
        return self.offer if name == "offer_amount_cents" else self.cost

    def widgets(self) -> list[QWidget]:
        return [self.label, self.members, self.offer, self.cost, self.message]


class CampaignDialog(QDialog):
    """New campaign (no `campaign`) or Edit campaign. `saved(campaign)` after the server said
    yes; `result_campaign` holds it too."""

    saved = Signal(object)

    def __init__(
        self,
        *,
        send: Sender,
        load_targets: Loader | None = None,
        load_details: Loader | None = None,
        campaign: Campaign | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.campaign = campaign
        self.editing = campaign is not None
        self._send = send
        self.result_campaign: Campaign | None = None
        self.targets: list[TargetChoice] = []
        self.rows: list[BidRow] = []
        self._headers: list[QLabel] = []
        self.loaded = False
        self.busy = False
        self.errors: Errors = {}
        self.shown_errors: Errors = {}
        self._server_errors: Errors = {}
        self._touched: set[str] = set()
        self._original: CampaignForm | None = None
        self._bids_locked = False
        self._fixed_target: TargetChoice | None = None
        self.closed = False

        self.setWindowTitle(
            f"Edit Campaign — {campaign.title}" if campaign else "New Campaign — Campaign Pulse"
        )
        self.setAccessibleName(self.windowTitle())
        self.top_message = FieldMessage("Problem with the campaign")
        self.title = QLineEdit()
        self.title.setAccessibleName("Title")
        self.title.setPlaceholderText("Spring Trail Sale")
        self.description = QPlainTextEdit()
        self.description.setAccessibleName("Description")
        self.description.setTabChangesFocus(True)
        self.description.setFixedHeight(64)
        self.target = QComboBox()
        self.target.setAccessibleName("Target")
        self.starts = date_time_edit("Starts")
        self.ends = date_time_edit("Ends")
        self.messages: dict[str, FieldMessage] = {
            name: FieldMessage(f"{label} problem") for name, label in FIELD_NAMES.items()
        }

        form = QFormLayout()
        for name, text, widget in (
            ("title", "&Title", self.title),
            ("description", "&Description", self.description),
            ("target_id", "Tar&get", self.target),
            ("starts_at", "&Starts", self.starts),
            ("ends_at", "&Ends", self.ends),
        ):
            label = QLabel(text)
            label.setBuddy(widget)
            holder = QWidget()
            column = QVBoxLayout(holder)
            column.setContentsMargins(0, 0, 0, 0)
            column.setSpacing(2)
            column.addWidget(widget)
            column.addWidget(self.messages[name])
            form.addRow(label, holder)

        self.bids_box = QGroupBox("Bids per band, bullseye first")
        self.bids_grid = QGridLayout(self.bids_box)
        self.bids_note = QLabel("Choose a target to bid on its bands.")
        self.bids_note.setWordWrap(True)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.ok_button: QPushButton = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Save" if self.editing else "Create")
        self.ok_button.setDefault(True)
        self.ok_button.setAccessibleName(self.ok_button.text())
        self.cancel_button = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        self.cancel_button.setAccessibleName("Cancel")
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(self.top_message)
        layout.addLayout(form)
        layout.addWidget(self.bids_note)
        layout.addWidget(self.bids_box)
        layout.addWidget(self.messages["bids"])
        layout.addWidget(self.buttons)
        self.setMinimumWidth(560)

        self.title.textChanged.connect(lambda: self._edited("title"))
        self.description.textChanged.connect(lambda: self._edited("description"))
        self.target.currentIndexChanged.connect(self._target_changed)
        self.starts.dateTimeChanged.connect(lambda: self._edited("starts_at"))
        self.ends.dateTimeChanged.connect(lambda: self._edited("ends_at"))

        start = _next_hour()
        set_moment(self.starts, start)
        set_moment(self.ends, start + timedelta(days=DEFAULT_DAYS))
        self._set_loading(True)
        if campaign is not None:
            self._prefill_row(campaign)
            if load_details is not None:
                load_details(self._details_loaded)
            else:
                self._details_loaded(CampaignDetails(campaign, ()), None)
        elif load_targets is not None:
            load_targets(self._targets_loaded)
        self.title.setFocus()

    # ---- loading ------------------------------------------------------------------------

    def _set_loading(self, loading: bool) -> None:
        self.loaded = not loading
        if loading:
            self.top_message.show_note(
                "Loading the campaign…" if self.editing else "Loading your targets…"
            )
            self.target.setEnabled(False)
        self._refresh()

    def _prefill_row(self, campaign: Campaign) -> None:
        """Show what the grid's row has while the campaign's details load."""
        self._fill(campaign)
        self.target.addItem(campaign.target.title)
        self.target.setToolTip("A campaign's target cannot change; create a campaign instead.")

    def done(self, result: int) -> None:
        self.closed = True
        super().done(result)

    def _details_loaded(self, details: Any, error: BaseException | None) -> None:
        if self.closed:  # answered after the dialog went away
            return
        if error is not None:
            self.top_message.show_error(f"Could not load the campaign: {_message(error)}")
            return
        campaign: Campaign = details.campaign
        self.campaign = campaign
        self._fill(campaign)  # the row may be older than this answer
        populated = campaign.target.population_status is PopulationStatus.POPULATED
        bands = [BandChoice(b.band_id, b.level, b.name, b.population) for b in campaign.stats.bands]
        self._fixed_target = TargetChoice(
            campaign.target.id,
            campaign.target.title,
            campaign.target.population_status,
            tuple(bands),
        )
        self._bids_locked = campaign.launched_at is not None
        self._build_bids(bands, populated, details.bids)
        self.top_message.clear_message()
        self._touched.clear()
        self._set_loading(False)
        self._original = self.form()
        self._refresh()

    def _fill(self, campaign: Campaign) -> None:
        self.title.setText(campaign.title)
        self.description.setPlainText(campaign.description)
        for edit, value in ((self.starts, campaign.starts_at), (self.ends, campaign.ends_at)):
            moment = _parse_moment(value)
            if moment is not None:
                set_moment(edit, moment)

    def _targets_loaded(self, targets: Any, error: BaseException | None) -> None:
        if self.closed:
            return
        if error is not None:
            self.top_message.show_error(f"Could not load your targets: {_message(error)}")
            return
        self.targets = list(targets)
        self.top_message.clear_message()
        self.target.blockSignals(True)
        self.target.clear()
        for target in self.targets:
            self.target.addItem(target.label, target.id)
        self.target.blockSignals(False)
        self.target.setEnabled(bool(self.targets))
        if not self.targets:
            self.top_message.show_error(
                "Your company has no targets yet: create one first (POST /api/targets)."
            )
        self._set_loading(False)
        self._target_changed(0 if self.targets else -1, touched=False)

    # ---- the bids grid ------------------------------------------------------------------

    def _target_changed(self, index: int, *, touched: bool = True) -> None:
        if self.editing:
            return
        target = self.targets[index] if 0 <= index < len(self.targets) else None
        if target is None:
            self._build_bids([], False, ())
        else:
            populated = target.population_status is PopulationStatus.POPULATED
            self._build_bids(list(target.bands), populated, ())
        if touched:
            self._edited("target_id")
        else:
            self._refresh()

    def _build_bids(self, bands: list[BandChoice], populated: bool, bids: Any) -> None:
        old = [widget for row in self.rows for widget in row.widgets()] + self._headers
        for widget in old:
            self.bids_grid.removeWidget(widget)
            widget.deleteLater()
        self.rows, self._headers = [], []
        for key in [k for k in self._touched if k.startswith("bids.")]:
            self._touched.discard(key)
        entries = bid_entries(bands, bids)
        if bands:
            for column, text in enumerate(("Band", "Members", "Offer to member", "Cost per offer")):
                header = QLabel(f"<b>{text}</b>")
                self._headers.append(header)
                self.bids_grid.addWidget(header, 0, column)
        ordered = sorted(bands, key=lambda b: b.level)
        for index, (band, entry) in enumerate(zip(ordered, entries, strict=True)):
            row = BidRow(band, populated)
            row.offer.setText(entry.offer)
            row.cost.setText(entry.cost)
            grid_row = 1 + 2 * index
            self.bids_grid.addWidget(row.label, grid_row, 0)
            self.bids_grid.addWidget(row.members, grid_row, 1)
            self.bids_grid.addWidget(row.offer, grid_row, 2)
            self.bids_grid.addWidget(row.cost, grid_row, 3)
            self.bids_grid.addWidget(row.message, grid_row + 1, 0, 1, 4)
            for name in BID_FIELDS:
                key = bid_key(index, name)
                row.edit(name).textChanged.connect(lambda _text, key=key: self._edited(key))
                row.edit(name).setEnabled(not self._bids_locked)
            self.rows.append(row)
        if self._bids_locked:
            self.bids_note.setText(messages.BIDS_FIXED + ".")
        elif bands:
            self.bids_note.setText(
                "Amounts in your currency, with cents. An outer band may not bid more than "
                "the band inside it."
            )
        else:
            self.bids_note.setText("Choose a target to bid on its bands.")
        self._order_tabs()

    def _order_tabs(self) -> None:
        chain: list[QWidget] = [self.title, self.description, self.target, self.starts, self.ends]
        for row in self.rows:
            chain += [row.offer, row.cost]
        chain += [self.ok_button, self.cancel_button]
        for first, second in itertools.pairwise(chain):
            QWidget.setTabOrder(first, second)

    # ---- the rules, as the user types ----------------------------------------------------

    def form(self) -> CampaignForm:
        if self.editing:
            target = self._fixed_target
        else:
            index = self.target.currentIndex()
            target = self.targets[index] if 0 <= index < len(self.targets) else None
        entries = bid_entries(target.bands if target else (), ())
        for entry, row in zip(entries, self.rows, strict=False):
            entry.offer, entry.cost = row.offer.text(), row.cost.text()
        return CampaignForm(
            title=self.title.text(),
            description=self.description.toPlainText(),
            target=target,
            starts_at=moment_of(self.starts),
            ends_at=moment_of(self.ends),
            bids=entries,
            bids_locked=self._bids_locked,
        )

    def _edited(self, key: str) -> None:
        self._touched.add(key)
        self._server_errors.pop(key, None)
        if key in ("starts_at", "ends_at"):
            self._touched.update(("starts_at", "ends_at"))
            self._server_errors.pop("ends_at", None)
        self._refresh()

    def _refresh(self) -> None:
        self.errors = validate(self.form()) if self.loaded else {}
        shown = {k: v for k, v in self.errors.items() if k in self._touched}
        shown.update(self._server_errors)
        self.shown_errors = shown
        for name, message in self.messages.items():
            text = shown.get(name, "")
            message.show_error(text) if text else message.clear_message()
        for index, row in enumerate(self.rows):
            parts = []
            for name, label in (("offer_amount_cents", "Offer"), ("marketer_cost_cents", "Cost")):
                text = shown.get(bid_key(index, name), "")
                row.edit(name).setAccessibleDescription(text)
                if text:
                    parts.append(f"{label}: {text}")
            row.message.show_error("; ".join(parts)) if parts else row.message.clear_message()
        for name, widget in (
            ("title", self.title),
            ("description", self.description),
            ("target_id", self.target),
            ("starts_at", self.starts),
            ("ends_at", self.ends),
        ):
            widget.setAccessibleDescription(shown.get(name, ""))
        valid = self.loaded and not self.errors and not self.busy
        self.ok_button.setEnabled(valid)
        first = next(iter(self.errors.values()), "") if self.errors else ""
        self.ok_button.setToolTip(f"Fix this first: {first}" if first else "")

    def show_all_errors(self) -> None:
        """Show every problem, touched or not, and put the cursor on the first one."""
        self._touched.update(self.errors)
        self._refresh()
        widget = self._widget_for(next(iter(self.errors), ""))
        if widget is not None:
            widget.setFocus()

    def _widget_for(self, key: str) -> QWidget | None:
        widgets: dict[str, QWidget] = {
            "title": self.title,
            "description": self.description,
            "target_id": self.target,
            "starts_at": self.starts,
            "ends_at": self.ends,
        }
        if key in widgets:
            return widgets[key]
        parts = key.split(".")
        if len(parts) == 3 and parts[1].isdigit() and int(parts[1]) < len(self.rows):
            return self.rows[int(parts[1])].edit(parts[2])
        return None

    def keyPressEvent(self, event: QKeyEvent) -> None:
        enter = event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        if enter and self.loaded and not self.busy and self.errors:
            self.show_all_errors()
            return
        super().keyPressEvent(event)

    # ---- sending ------------------------------------------------------------------------

    def submit(self) -> None:
        """Send the campaign if the rules allow it (else show why not)."""
        if not self.loaded or self.busy:
            return
        if self.errors:
            self.show_all_errors()
            return
        form = self.form()
        if self.editing:
            assert self._original is not None
            body = patch_body(form, self._original)
            if not body:
                self.accept()  # nothing changed: nothing to send
                return
        else:
            body = create_body(form)
        self.busy = True
        self.top_message.show_note("Saving…")
        self._refresh()
        self._send(body, self._sent)

    def _sent(self, campaign: Any, error: BaseException | None) -> None:
        self.busy = False
        if self.closed:  # cancelled while sending: the grid shows the outcome anyway
            return
        if error is None:
            self.top_message.clear_message()
            self.result_campaign = campaign
            self._refresh()
            self.saved.emit(campaign)
            self.accept()
            return
        self.top_message.clear_message()
        self._server_errors = {}
        if isinstance(error, ValidationError) and error.problems:
            general = []
            for location, text in error.problems:
                key = field_key(location)
                if key.endswith(".band_id") or (key.startswith("bids") and key.count(".") != 2):
                    key = "bids"
                if key in self.messages or self._widget_for(key) is not None:
                    self._server_errors[key] = text
                else:
                    general.append(f"{key}: {text}" if key else text)
            if general:
                self.top_message.show_error("; ".join(general))
        elif isinstance(error, NotFoundError) and not self.editing:
            self._server_errors["target_id"] = error.message
        elif isinstance(error, ForbiddenError):
            what = "change this campaign" if self.editing else "create campaigns"
            self.top_message.show_error(forbidden_text(what, error.message))
        else:
            self.top_message.show_error(_message(error))
        self._refresh()
        first = next(iter(self._server_errors), "")
        widget = self._widget_for(first)
        if widget is not None:
            widget.setFocus()


def _next_hour() -> datetime:
    now = datetime.now().astimezone()
    return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def _parse_moment(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.astimezone()


def _message(error: BaseException) -> str:
    return error.message if isinstance(error, ClientError) else str(error) or type(error).__name__
