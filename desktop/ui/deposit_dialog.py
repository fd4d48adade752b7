"""The deposit dialog (admins): an amount with cents and a note, added to a campaign's balance."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.client.access import forbidden_text
from desktop.client.campaign_forms import (
    NOTE_MAX,
    cents_of,
    deposit_body,
    field_key,
    money,
    parse_money,
    validate_deposit,
)
from desktop.client.errors import ClientError, ForbiddenError, ValidationError
from desktop.client.models import Campaign
from desktop.ui.form_widgets import FieldMessage, MoneyEdit

Done = Callable[[Any, BaseException | None], None]
Sender = Callable[[dict[str, Any], Done], None]


class DepositDialog(QDialog):
    """Add money to `campaign`; `result` holds the server's answer once it said yes."""

    def __init__(self, campaign: Campaign, send: Sender, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.campaign = campaign
        self._send = send
        self.busy = False
        self.result_answer: dict[str, Any] | None = None
        self.errors: dict[str, str] = {}
        self._touched: set[str] = set()
        self.closed = False
        self.setWindowTitle(f"Add Deposit — {campaign.title}")
        self.setAccessibleName("Add a deposit")
        self.balance_cents = cents_of(campaign.stats.balance)

        self.top_message = FieldMessage("Problem with the deposit")
        self.amount = MoneyEdit("Amount")
        self.amount_message = FieldMessage("Amount problem")
        self.note = QLineEdit()
        self.note.setAccessibleName("Note")
        self.note.setPlaceholderText("Deposit")
        self.note.setMaxLength(NOTE_MAX + 50)  # longer text gets a message, not a silent cut
        self.note_message = FieldMessage("Note problem")
        self.balance = QLabel()
        self.balance.setAccessibleName("Balance")
        self.balance.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        form = QFormLayout()
        for text, widget, message in (
            ("&Amount", self.amount, self.amount_message),
            ("&Note", self.note, self.note_message),
        ):
            label = QLabel(text)
            label.setBuddy(widget)
            holder = QWidget()
            column = QVBoxLayout(holder)
            column.setContentsMargins(0, 0, 0, 0)
            column.setSpacing(2)
            column.addWidget(widget)
            column.addWidget(message)
            form.addRow(label, holder)
        form.addRow("Balance:", self.balance)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.ok_button: QPushButton = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Add Deposit")
        self.ok_button.setAccessibleName("Add Deposit")
        self.ok_button.setDefault(True)
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setAccessibleName("Cancel")
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.top_message)
        layout.addLayout(form)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(400)

        self.amount.textChanged.connect(lambda: self._edited("amount_cents"))
        self.note.textChanged.connect(lambda: self._edited("note"))
        self._refresh()
        self.amount.setFocus()

    def _edited(self, key: str) -> None:
        self._touched.add(key)
        self._refresh()

    def _refresh(self) -> None:
        self.errors = validate_deposit(self.amount.text(), self.note.text())
        for key, message, widget in (
            ("amount_cents", self.amount_message, self.amount),
            ("note", self.note_message, self.note),
        ):
            text = self.errors.get(key, "") if key in self._touched else ""
            message.show_error(text) if text else message.clear_message()
            widget.setAccessibleDescription(text)
        after = ""
        if "amount_cents" not in self.errors:
            after = f" → {money(self.balance_cents + parse_money(self.amount.text()))} after"
        self.balance.setText(f"{money(self.balance_cents)}{after}")
        self.ok_button.setEnabled(not self.errors and not self.busy)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.errors:
            self._touched.update(self.errors)
            self._refresh()
            return
        super().keyPressEvent(event)

    def submit(self) -> None:
        if self.busy or self.errors:
            return
        self.busy = True
        self.top_message.show_note("Adding the deposit…")
        self._refresh()
        self._send(deposit_body(self.amount.text(), self.note.text()), self._sent)

    def done(self, result: int) -> None:
        self.closed = True
        super().done(result)

    def _sent(self, answer: Any, error: BaseException | None) -> None:
        self.busy = False
        if self.closed:  # cancelled while sending: the flash tells how it went
            return
        self.top_message.clear_message()
        if error is None:
            self.result_answer = answer
            self._refresh()
            self.accept()
            return
        if isinstance(error, ForbiddenError):
            self.top_message.show_error(forbidden_text("add deposits", error.message))
        elif isinstance(error, ValidationError) and error.problems:
            for location, text in error.problems:
                key = field_key(location)
                target = {"amount_cents": self.amount_message, "note": self.note_message}.get(key)
                if target is not None:
                    target.show_error(text)
                else:
                    self.top_message.show_error(text)
        else:
            text = error.message if isinstance(error, ClientError) else str(error)
            self.top_message.show_error(text)
        self.ok_button.setEnabled(not self.errors)
