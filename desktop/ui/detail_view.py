"""A campaign's detail window: live stats, a live chart and the 'What changed?' history.

While open it holds a subscription to `campaign:<id>`; closing releases it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop.client.history import STAT_LABELS, ChartPoint, describe, format_value, parse_ts
from desktop.client.models import Campaign, EventFrame
from desktop.client.store import CampaignStore, Change, RowChanged
from desktop.ui.bridge import ClientBridge
from desktop.ui.campaign_model import POPULATION_LABELS
from desktop.ui.theme import palette_changed, refresh_colors
from pulse_core.stats import CampaignStats
from pulse_core.topics import campaign_topic

HISTORY_LIMIT = 100


class CampaignDetailView(QWidget):
    """One campaign, live. Emits `closed(campaign_id)` when the window closes."""

    closed = Signal(int)

    def __init__(
        self, campaign: Campaign, store: CampaignStore, bridge: ClientBridge, parent: Any = None
    ) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.campaign_id = campaign.id
        self.topic = campaign_topic(campaign.id)
        self.store = store
        self.bridge = bridge
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.resize(900, 620)
        self._seen: set[int] = set()
        self._last_stats: CampaignStats | None = campaign.stats
        self._history_loaded = False

        self.heading = QLabel()
        self.heading.setObjectName("detailHeading")
        self.heading.setWordWrap(True)
        self.heading.setAccessibleName("Campaign summary")
        self.stat_labels: dict[str, QLabel] = {}
        stats_box = QGroupBox("Stats")
        stats_form = QFormLayout(stats_box)
        for name, label in STAT_LABELS.items():
            value = QLabel()
            value.setAlignment(Qt.AlignmentFlag.AlignRight)
            value.setAccessibleName(label)
            self.stat_labels[name] = value
            stats_form.addRow(label, value)
        self.bands = QLabel()
        self.bands.setWordWrap(True)
        self.bands.setAccessibleName("Bands")
        stats_form.addRow("Bands", self.bands)

        from desktop.ui.stats_chart import StatsChart  # QtCharts loads with the first detail view

        self.chart = StatsChart()
        self.history = QListWidget()
        self.history.setObjectName("whatChanged")
        self.history.setAccessibleName("What changed? History of events")
        self.history_status = QLabel("Loading history…")
        self.history_status.setAccessibleName("History status")
        history_box = QGroupBox("What changed?")
        history_layout = QVBoxLayout(history_box)
        history_layout.addWidget(self.history_status)
        history_layout.addWidget(self.history)

        top = QHBoxLayout()
        top.addWidget(stats_box)
        top.addWidget(self.chart, 1)
        top_widget = QWidget()
        top_widget.setLayout(top)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(top_widget)
        splitter.addWidget(history_box)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(splitter, 1)

        self._show(campaign)
        self.chart.add_point(ChartPoint.of(datetime.now(UTC), campaign.stats))
        store.add_listener(self._on_store_change)
        bridge.subscribed.connect(self._on_subscribed)
        bridge.campaignTopicEvent.connect(self._on_event)
        bridge.resynced.connect(self._on_resync)
        bridge.open_campaign(campaign.id)

    # ---- incoming -----------------------------------------------------------------------

    def _on_subscribed(self, topic: str, seq: int, resumed: bool) -> None:
        if topic == self.topic and not self._history_loaded:
            self._load_history(seq)

    def _on_resync(self, topic: str) -> None:
        if topic == self.topic:
            self.history.clear()
            self._seen.clear()
            self.bridge.fetch_campaign(self.campaign_id)
            live = self.bridge.session.live
            seq = live.last_seq(self.topic) if live else None
            self._load_history(seq or 0)

    def _load_history(self, upto: int) -> None:
        self._history_loaded = True
        self.history_status.setText("Loading history…")
        after = max(0, upto - HISTORY_LIMIT)
        self.bridge.history(self.campaign_id, after, self._history_done)

    def _history_done(self, frames: Any, error: BaseException | None) -> None:
        if error is not None:
            self.history_status.setText(f"Could not load the history: {error}")
            self._history_loaded = False
            return
        older = [f for f in frames if f.seq not in self._seen]
        self._seen.update(f.seq for f in older)
        live_rows = self.history.count()
        before: CampaignStats | None = None
        for index, frame in enumerate(older):
            self.history.insertItem(index, _line(frame, before))
            before = frame.stats or before
            if frame.stats is not None:
                self.chart.add_point(ChartPoint.of(parse_ts(frame.ts), frame.stats))
        count = self.history.count()
        self.history_status.setText(
            f"{count} event{'s' if count != 1 else ''}, newest last" if count else "No events yet."
        )
        if live_rows == 0:
            self.history.scrollToBottom()

    def _on_event(self, frame: EventFrame) -> None:
        if frame.topic != self.topic or frame.seq in self._seen:
            return
        self._seen.add(frame.seq)
        self.history.addItem(_line(frame, self._last_stats))
        self.history.scrollToBottom()
        self.history_status.setText(f"{self.history.count()} events, newest last")
        if frame.stats is not None:
            self._last_stats = frame.stats
            self.chart.add_point(ChartPoint.of(parse_ts(frame.ts), frame.stats))
        else:
            self.bridge.fetch_campaign(self.campaign_id)

    def _on_store_change(self, change: Change) -> None:
        if isinstance(change, RowChanged) and change.campaign_id == self.campaign_id:
            campaign = self.store.get(self.campaign_id)
            if campaign is not None:
                self._show(campaign)

    def _show(self, campaign: Campaign) -> None:
        self.setWindowTitle(f"{campaign.title} — Campaign Pulse")
        status = POPULATION_LABELS[campaign.target.population_status]
        dates = ", ".join(
            f"{label} {value[:10]}"
            for label, value in (("starts", campaign.starts_at), ("ends", campaign.ends_at))
            if value
        )
        self.heading.setText(
            f"<h2>{_escape(campaign.title)}</h2>"
            f"<b>{campaign.state.label}</b> · target <b>{_escape(campaign.target.title)}</b> "
            f"({status}){' · ' + dates if dates else ''}"
            + (f"<br>{_escape(campaign.description)}" if campaign.description else "")
        )
        for name, label in self.stat_labels.items():
            label.setText(format_value(name, getattr(campaign.stats, name)))
        self.bands.setText(
            ", ".join(f"{b.name}: {b.population:,}" for b in campaign.stats.bands) or "—"
        )

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if palette_changed(event):  # a theme change: the chart's colours follow
            refresh_colors(self)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.store.remove_listener(self._on_store_change)
        for signal, slot in (
            (self.bridge.subscribed, self._on_subscribed),
            (self.bridge.campaignTopicEvent, self._on_event),
            (self.bridge.resynced, self._on_resync),
        ):
            signal.disconnect(slot)
        self.bridge.close_campaign(self.campaign_id)
        self.closed.emit(self.campaign_id)
        super().closeEvent(event)


def _line(frame: EventFrame, before: CampaignStats | None) -> str:
    moment = parse_ts(frame.ts).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return f"{moment}  {describe(frame, before)}"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
