"""The main window: the live campaign grid, its actions, flashes, tray and connection status."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

from PySide6.QtCore import QItemSelection, QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QTableView,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from desktop.client.alerts import AlertRouter, AlertSettings, WindowContext
from desktop.client.dashboard import Dashboard
from desktop.client.errors import ClientError
from desktop.client.live import LinkState, LinkStatus
from desktop.client.models import Campaign
from desktop.client.store import Change, RowChanged
from desktop.ui.bridge import ClientBridge
from desktop.ui.campaign_model import (
    COL_TITLE,
    CampaignFilterProxy,
    CampaignTableModel,
    StateFilter,
)
from desktop.ui.detail_view import CampaignDetailView
from desktop.ui.flash_banner import FlashBanner
from desktop.ui.preferences import Preferences
from desktop.ui.resources import app_icon
from desktop.ui.settings_dialog import AlertSettingsDialog
from desktop.ui.sounds import EffectPlayer, SilentPlayer, create_player
from desktop.ui.tray import Tray

log = logging.getLogger(__name__)
COALESCE_MS = 50
APP_NAME = "Campaign Pulse"


def window_title(name: str) -> str:
    return f"{APP_NAME} — {name}"


class MainWindow(QMainWindow):
    """One signed-in user's dashboard."""

    quitRequested = Signal()
    passwordNeeded = Signal()

    def __init__(
        self,
        bridge: ClientBridge,
        preferences: Preferences,
        *,
        sound_player: EffectPlayer | SilentPlayer | None = None,
        tray: Tray | None = None,
    ) -> None:
        super().__init__()
        user = bridge.user
        assert user is not None, "sign in before opening the main window"
        self.bridge = bridge
        self.preferences = preferences
        self.user = user
        self.setWindowTitle(window_title(user.display_name))
        self.setWindowIcon(app_icon())
        self.alert_settings = preferences.alert_settings(user.email)
        self.dashboard = Dashboard(router=AlertRouter(self.alert_settings))
        self.store = self.dashboard.store
        self._sounds = sound_player
        self.tray = tray if tray is not None else Tray(app_icon(), self.windowTitle(), self)
        self.tray.set_muted(self.alert_settings.muted)
        self.details: dict[int, CampaignDetailView] = {}
        self.loaded = False
        self.live_seq: int | None = None  # the marketer topic's seq once subscribed
        self._busy: set[int] = set()
        self._link = LinkStatus(LinkState.CONNECTING)
        self._retry_at = 0.0

        self.model = CampaignTableModel(self.store, self)
        self.proxy = CampaignFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self._build_actions()
        self._build_widgets()
        self._build_menus()
        self._connect()
        state = preferences.window_state("main")
        if state is not None:
            self.restoreGeometry(state)
        else:
            self.resize(1280, 720)

    # ---- construction -------------------------------------------------------------------

    def _build_actions(self) -> None:
        self.launch_action = QAction("&Launch Campaign", self)
        self.launch_action.setShortcut(QKeySequence("Ctrl+L"))
        self.launch_action.setToolTip("Launch the selected campaign (Ctrl+L)")
        self.launch_action.triggered.connect(self.launch_selected)
        self.refresh_action = QAction("&Refresh Offers", self)
        self.refresh_action.setShortcut(QKeySequence("Ctrl+R"))
        self.refresh_action.setToolTip("Create offers for new members of the target (Ctrl+R)")
        self.refresh_action.triggered.connect(self.refresh_selected)
        self.details_action = QAction("Open &Details", self)
        self.details_action.setShortcut(QKeySequence("Ctrl+D"))
        self.details_action.setToolTip("Live chart and history of the selected campaign (Ctrl+D)")
        self.details_action.triggered.connect(self.open_selected)
        self.settings_action = QAction("Alert &Settings…", self)
        self.settings_action.setShortcut(QKeySequence("Ctrl+,"))
        self.settings_action.triggered.connect(self.edit_alert_settings)
        self.reconnect_action = QAction("Reconnect &Now", self)
        self.reconnect_action.triggered.connect(self.bridge.reconnect_now)
        self.quit_action = QAction("&Quit", self)
        self.quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        self.quit_action.triggered.connect(self.quitRequested)
        self.find_action = QAction("Find", self)
        self.find_action.setShortcut(QKeySequence.StandardKey.Find)
        self.find_action.triggered.connect(lambda: self.search.setFocus())
        self.addAction(self.find_action)
        self.dismiss_action = QAction("Dismiss messages", self)
        self.dismiss_action.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        self.dismiss_action.triggered.connect(self.dashboard.flashes.clear)
        self.addAction(self.dismiss_action)
        for action in (self.launch_action, self.refresh_action, self.details_action):
            action.setEnabled(False)

    def _build_widgets(self) -> None:
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search campaigns or targets (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.search.setMaximumWidth(320)
        self.state_filter = QComboBox()
        for label, state in StateFilter.CHOICES:
            self.state_filter.addItem(label, state)
        toolbar = QToolBar("Campaign actions")
        toolbar.setObjectName("actions")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        toolbar.addAction(self.launch_action)
        toolbar.addAction(self.refresh_action)
        toolbar.addAction(self.details_action)
        toolbar.addSeparator()
        toolbar.addWidget(QLabel(" Show "))
        toolbar.addWidget(self.state_filter)
        toolbar.addWidget(QLabel("  "))
        toolbar.addWidget(self.search)
        self.addToolBar(toolbar)
        self.toolbar = toolbar

        self.banner = FlashBanner(self.dashboard.flashes)
        self.table = QTableView()
        self.table.setObjectName("campaignGrid")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(COL_TITLE, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(24)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        header.setResizeContentsPrecision(200)  # size columns from the first rows only
        header.resizeSection(COL_TITLE, 220)
        self.table.setWordWrap(False)
        self.empty_label = QLabel("Loading your campaigns…")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addWidget(self.banner)
        layout.addWidget(self.empty_label)
        layout.addWidget(self.table, 1)
        self.setCentralWidget(central)

        self.connection_label = QLabel("Connecting…")
        self.connection_label.setObjectName("connectionStatus")
        self.count_label = QLabel()
        self.statusBar().addPermanentWidget(self.count_label)
        self.statusBar().addWidget(self.connection_label)
        self._countdown = QTimer(self)
        self._countdown.setInterval(1000)
        self._countdown.timeout.connect(self._show_link)

        self._coalesce = QTimer(self)
        self._coalesce.setSingleShot(True)
        self._coalesce.setInterval(COALESCE_MS)
        self._coalesce.timeout.connect(self.apply_pending_events)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction(self.settings_action)
        file_menu.addAction(self.reconnect_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        campaign_menu = self.menuBar().addMenu("&Campaign")
        campaign_menu.addAction(self.launch_action)
        campaign_menu.addAction(self.refresh_action)
        campaign_menu.addAction(self.details_action)
        self.context_menu = QMenu(self)
        self.context_menu.addAction(self.launch_action)
        self.context_menu.addAction(self.refresh_action)
        self.context_menu.addSeparator()
        self.context_menu.addAction(self.details_action)

    def _connect(self) -> None:
        bridge = self.bridge
        bridge.statusChanged.connect(self._on_status)
        bridge.subscribed.connect(self._on_subscribed)
        bridge.eventsReady.connect(self._on_events_ready)
        bridge.campaignsLoaded.connect(self._on_campaigns)
        bridge.campaignFetched.connect(self._on_campaign)
        bridge.campaignGone.connect(self.store.remove)
        bridge.tokenExpired.connect(self.passwordNeeded)
        bridge.serverError.connect(self._on_server_error)
        self.search.textChanged.connect(self._filter_changed)
        self.state_filter.currentIndexChanged.connect(self._filter_changed)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.table.doubleClicked.connect(lambda _index: self.open_selected())
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.banner.campaignClicked.connect(self.select_campaign)
        self.store.add_listener(self._on_store_change)
        self.proxy.rowsInserted.connect(self._update_counts)
        self.proxy.rowsRemoved.connect(self._update_counts)
        self.proxy.layoutChanged.connect(self._update_counts)
        self.proxy.modelReset.connect(self._update_counts)
        tray = self.tray
        tray.openRequested.connect(self.bring_to_front)
        tray.campaignRequested.connect(self.open_campaign)
        tray.quitRequested.connect(self.quitRequested)
        tray.muteToggled.connect(self._set_muted)

    # ---- live data ----------------------------------------------------------------------

    def _on_campaigns(self, campaigns: list[Campaign]) -> None:
        first_load = not self.store
        if first_load:
            campaigns = self.proxy.presorted(campaigns)
        self.store.replace_all(campaigns)
        if first_load and campaigns:
            self.table.resizeColumnsToContents()
            self.table.setColumnWidth(COL_TITLE, max(180, self.table.columnWidth(COL_TITLE)))
        self.loaded = True
        self._update_counts()
        self._selection_changed()

    def _on_campaign(self, campaign: Campaign) -> None:
        self.store.upsert(campaign)

    def _on_subscribed(self, topic: str, seq: int, _resumed: bool) -> None:
        if topic == self.bridge.session.marketer_topic:
            self.live_seq = seq

    def _on_events_ready(self) -> None:
        if not self._coalesce.isActive():
            self._coalesce.start()

    def apply_pending_events(self) -> None:
        """Apply every buffered event in one go: one change per row, then the alerts."""
        frames = self.bridge.take_events()
        if not frames:
            return
        result = self.dashboard.apply(frames, self.window_context())
        for campaign_id in sorted(result.fetch):
            self.bridge.fetch_campaign(campaign_id)
        for alert in result.alerts:
            if alert.decision.unread:
                self.tray.add_unread()
            if alert.decision.notify:
                self.tray.notify(alert.flash)
            if alert.decision.sound:
                self.sounds.play(alert.decision.sound)

    @property
    def sounds(self) -> EffectPlayer | SilentPlayer:
        """The sound player, made on first use: QtMultimedia loads only for users who want it."""
        if self._sounds is None:
            self._sounds = create_player(self)
        return self._sounds

    def window_context(self) -> WindowContext:
        return WindowContext(
            visible=self.isVisible() and not self.isMinimized(),
            focused=self.isActiveWindow(),
            tray_available=self.tray.available,
        )

    def _on_store_change(self, change: Change) -> None:
        if isinstance(change, RowChanged) and "state" in change.fields:
            self._selection_changed()

    def _on_status(self, status: LinkStatus) -> None:
        self._link = status
        if status.retry_in is not None:
            self._retry_at = time.monotonic() + status.retry_in
            self._countdown.start()
        else:
            self._countdown.stop()
        self._show_link()

    def _show_link(self) -> None:
        status = self._link
        if status.state is LinkState.CONNECTED:
            text, color = "● Connected — live", "#1e7b34"
        elif status.state is LinkState.CONNECTING:
            text, color = "● Connecting…", "#8a6d00"
        elif status.state is LinkState.RECONNECTING:
            seconds = max(0, round(self._retry_at - time.monotonic()))
            prefix = "Offline" if status.failures > 3 else "Reconnecting"
            text = f"● {prefix} — reconnecting in {seconds} s"
            if status.failures > 3:
                text = f"● Offline — retrying in {seconds} s ({status.reason})"
            color = "#b3261e" if status.failures > 3 else "#8a6d00"
        else:
            text, color = f"● Offline{' — ' + status.reason if status.reason else ''}", "#b3261e"
        self.connection_label.setText(text)
        self.connection_label.setStyleSheet(f"color: {color};")

    @property
    def connection_text(self) -> str:
        return self.connection_label.text()

    def _on_server_error(self, code: str, message: str) -> None:
        self.dashboard.failed(f"The server refused a request ({code}): {message}")

    # ---- selection and actions ----------------------------------------------------------

    def selected_campaign(self) -> Campaign | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        campaign = self.proxy.campaign(rows[0])
        return self.store.get(campaign.id) if campaign else None

    def select_campaign(self, campaign_id: int) -> bool:
        row = self.store.row_of(campaign_id)
        if row is None:
            return False
        index = self.proxy.mapFromSource(self.model.index(row, 0))
        if not index.isValid():  # filtered out: show everything again
            self.state_filter.setCurrentIndex(0)
            self.search.clear()
            index = self.proxy.mapFromSource(self.model.index(row, 0))
        self.table.selectRow(index.row())
        self.table.scrollTo(index)
        return True

    def _selection_changed(self, *_args: QItemSelection) -> None:
        campaign = self.selected_campaign()
        busy = campaign is not None and campaign.id in self._busy
        self.launch_action.setEnabled(bool(campaign and campaign.can_launch and not busy))
        self.refresh_action.setEnabled(bool(campaign and campaign.can_refresh_offers and not busy))
        self.details_action.setEnabled(campaign is not None)

    def _context_menu(self, point: QPoint) -> None:
        index = self.table.indexAt(point)
        if index.isValid():
            self.table.selectRow(index.row())
            self.context_menu.popup(self.table.viewport().mapToGlobal(point))

    def launch_selected(self) -> None:
        campaign = self.selected_campaign()
        if campaign is None or not campaign.can_launch:
            return
        self._busy.add(campaign.id)
        self._selection_changed()

        def done(message: Any, error: BaseException | None) -> None:
            self._busy.discard(campaign.id)
            self._selection_changed()
            if error is not None:
                self.dashboard.failed(_error_text(error, "launch"), campaign.id)
                self.bridge.fetch_campaign(campaign.id)
                return
            self.dashboard.launched(campaign.id, message)
            self.bridge.fetch_campaign(campaign.id)

        self.bridge.launch(campaign.id, done)

    def refresh_selected(self) -> None:
        campaign = self.selected_campaign()
        if campaign is None or not campaign.can_refresh_offers:
            return
        self._busy.add(campaign.id)
        self._selection_changed()

        def done(answer: Any, error: BaseException | None) -> None:
            self._busy.discard(campaign.id)
            self._selection_changed()
            if error is not None:
                self.dashboard.failed(_error_text(error, "refresh offers for"), campaign.id)
                return
            message, request_id = answer
            self.dashboard.refresh_started(campaign.id, message, request_id)

        self.bridge.refresh_offers(campaign.id, done)

    def open_selected(self) -> None:
        campaign = self.selected_campaign()
        if campaign is not None:
            self.open_campaign(campaign.id)

    def open_campaign(self, campaign_id: int) -> CampaignDetailView | None:
        """Bring the window forward and open (or raise) the campaign's detail view."""
        self.bring_to_front()
        self.select_campaign(campaign_id)
        view = self.details.get(campaign_id)
        if view is None:
            campaign = self.store.get(campaign_id)
            if campaign is None:
                return None
            view = CampaignDetailView(campaign, self.store, self.bridge)
            view.setWindowIcon(self.windowIcon())
            view.closed.connect(self.details.pop)
            self.details[campaign_id] = view
        view.show()
        view.raise_()
        view.activateWindow()
        return view

    # ---- filters, settings, window ------------------------------------------------------

    def _filter_changed(self, *_args: object) -> None:
        self.proxy.set_text(self.search.text())
        self.proxy.set_state(self.state_filter.currentData())
        self._update_counts()

    def _update_counts(self, *_args: object) -> None:
        total, shown = len(self.store), self.proxy.rowCount()
        if not self.loaded:
            self.empty_label.setText("Loading your campaigns…")
        elif total == 0:
            self.empty_label.setText("No campaigns yet. Create one on the server to see it here.")
        elif shown == 0:
            self.empty_label.setText("No campaign matches the search and filter.")
        self.empty_label.setVisible(shown == 0)
        self.count_label.setText(
            f"{total:,} campaigns" if shown == total else f"{shown:,} of {total:,} campaigns"
        )

    def _set_muted(self, muted: bool) -> None:
        self.apply_alert_settings(replace(self.alert_settings, muted=muted))

    def apply_alert_settings(self, settings: AlertSettings) -> None:
        self.alert_settings = settings
        self.dashboard.router.settings = settings
        self.preferences.save_alert_settings(self.user.email, settings)
        self.tray.set_muted(settings.muted)

    def edit_alert_settings(self) -> None:
        dialog = AlertSettingsDialog(
            self.alert_settings,
            tray_available=self.tray.available,
            sound_problem="" if self.sounds.available else self.sounds.reason,
            parent=self,
        )
        if dialog.exec():
            self.apply_alert_settings(dialog.result_settings())

    def bring_to_front(self) -> None:
        self.showNormal() if self.isMinimized() else self.show()
        self.raise_()
        self.activateWindow()
        self.tray.mark_read()

    def changeEvent(self, event: Any) -> None:
        super().changeEvent(event)
        if self.isActiveWindow():
            self.tray.mark_read()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.preferences.save_window_state("main", self.saveGeometry())
        if self.alert_settings.close_to_tray and self.tray.available:
            event.ignore()
            self.hide()
            return
        event.accept()
        self.quitRequested.emit()

    def shutdown(self) -> None:
        """Close detail views and stop timers before the session goes away."""
        for view in list(self.details.values()):
            view.close()
        self._coalesce.stop()
        self._countdown.stop()
        self.model.detach()
        self.tray.hide()


def _error_text(error: BaseException, verb: str) -> str:
    if isinstance(error, ClientError):
        return error.message
    return f"Could not {verb} the campaign: {error}"
