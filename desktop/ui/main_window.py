"""The main window: it puts the grid, actions, flashes, tray and status together.

The parts live in their own modules: the grid (`grid`), the actions and when they apply
(`actions`), what they do (`commands`), the connection status (`status`). This module builds
the menus and the toolbar, applies live events in coalesced batches, and owns the window's
life: settings, tray, detail views and shutdown.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QToolBar, QVBoxLayout, QWidget

from desktop.client.access import may_create
from desktop.client.accounts import Account
from desktop.client.alerts import AlertRouter, AlertSettings, WindowContext
from desktop.client.dashboard import Dashboard
from desktop.client.grid_cache import GridCache
from desktop.client.live import LinkStatus
from desktop.client.models import Campaign
from desktop.client.store import Change, RowChanged
from desktop.ui.account_menu import AccountMenu
from desktop.ui.actions import CampaignActions
from desktop.ui.bridge import ClientBridge
from desktop.ui.campaign_flows import CampaignFlows
from desktop.ui.columns import ColumnLayout
from desktop.ui.commands import CampaignCommands
from desktop.ui.detail_view import CampaignDetailView
from desktop.ui.export_action import SpreadsheetActions
from desktop.ui.first_run import NotificationOffer
from desktop.ui.flash_banner import FlashBanner
from desktop.ui.grid import VIEWER_EMPTY_TEXT, CampaignGrid, count_text
from desktop.ui.help_menu import HelpMenu, menu_named
from desktop.ui.offline import GridKeeper
from desktop.ui.preferences import Preferences
from desktop.ui.resources import app_icon
from desktop.ui.settings_dialog import AlertSettingsDialog
from desktop.ui.sounds import EffectPlayer, SilentPlayer, create_player
from desktop.ui.status import ConnectionStatus
from desktop.ui.theme import ThemeMenu, changed_cell_color, palette_changed, refresh_colors
from desktop.ui.tray import Tray

log = logging.getLogger(__name__)
COALESCE_MS = 20
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
        cache: GridCache | None = None,
    ) -> None:
        super().__init__()
        user = bridge.user
        assert user is not None, "sign in before opening the main window"
        self.bridge = bridge
        self.preferences = preferences
        self.user = user
        self.marketer_topic = user.marketer_topic
        self.setWindowTitle(window_title(user.display_name))
        self.setWindowIcon(app_icon())
        self.alert_settings = preferences.alert_settings(user.email)
        self.dashboard = Dashboard(router=AlertRouter(self.alert_settings))
        self.store = self.dashboard.store
        self._sounds = sound_player
        self.tray = tray if tray is not None else Tray(app_icon(), self.windowTitle(), self)
        self.tray.set_muted(self.alert_settings.muted)
        self.details: dict[int, CampaignDetailView] = {}
        self.live_seq: int | None = None  # the marketer topic's seq once subscribed

        self.grid = CampaignGrid(self.store)
        self.columns = ColumnLayout(self.grid, preferences, bridge.server_url, user.email, self)
        self.spreadsheet = SpreadsheetActions(self.grid, self)
        self.campaign_actions = CampaignActions(self, role=user.role)
        self.commands = CampaignCommands(bridge, self.dashboard, self)
        self.flows = CampaignFlows(
            self,
            bridge,
            self.commands,
            self.campaign_actions,
            self.store,
            self.selected_campaign,
            self.select_campaign,
        )
        if not may_create(user.role):
            self.grid.empty_text = VIEWER_EMPTY_TEXT
        self._build_window_actions()
        self._build_widgets()
        # The grid on disk for offline starts (`cache`), and the account's menu entries.
        self.keeper = GridKeeper(bridge, self.store, self.grid, self.connection_label, cache, self)
        account = Account(bridge.server_url, user.email, user.marketer_name or "")
        self.account_menu = AccountMenu(preferences, account, self)
        self._build_menus()
        self._connect()
        state = preferences.window_state("main")
        if state is not None:
            self.restoreGeometry(state)
        else:
            self.resize(1280, 720)

    # ---- the grid's parts, under their old names -----------------------------------------

    @property
    def table(self) -> Any:
        return self.grid.table

    @property
    def proxy(self) -> Any:
        return self.grid.proxy

    @property
    def model(self) -> Any:
        return self.grid.model

    @property
    def search(self) -> Any:
        return self.grid.search

    @property
    def state_filter(self) -> Any:
        return self.grid.state_filter

    @property
    def context_menu(self) -> Any:
        return self.grid.context_menu

    @property
    def loaded(self) -> bool:
        return self.grid.loaded

    @property
    def launch_action(self) -> QAction:
        return self.campaign_actions.launch

    @property
    def refresh_action(self) -> QAction:
        return self.campaign_actions.refresh

    @property
    def details_action(self) -> QAction:
        return self.campaign_actions.details

    @property
    def _link(self) -> LinkStatus:
        return self.connection_label.status

    # ---- construction -------------------------------------------------------------------

    def _build_window_actions(self) -> None:
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
        self.find_action.triggered.connect(lambda: self.grid.search.setFocus())
        self.addAction(self.find_action)
        self.dismiss_action = QAction("Dismiss messages", self)
        self.dismiss_action.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        self.dismiss_action.triggered.connect(self.dashboard.flashes.clear)
        self.addAction(self.dismiss_action)

    def _build_widgets(self) -> None:
        toolbar = QToolBar("Campaign actions")
        toolbar.setObjectName("actions")
        toolbar.setAccessibleName("Campaign actions")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        toolbar.addAction(self.campaign_actions.new)
        toolbar.addSeparator()
        for action in self.campaign_actions.for_selection():
            toolbar.addAction(action)
        toolbar.addAction(self.campaign_actions.pause)
        toolbar.addAction(self.campaign_actions.resume)
        toolbar.addSeparator()
        toolbar.addWidget(QLabel(" Show "))
        toolbar.addWidget(self.grid.state_filter)
        toolbar.addWidget(QLabel("  "))
        toolbar.addWidget(self.grid.search)
        self.addToolBar(toolbar)
        self.toolbar = toolbar

        self.banner = FlashBanner(self.dashboard.flashes)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 0)
        self.notification_offer = self._offer_notifications()
        if self.notification_offer is not None:
            layout.addWidget(self.notification_offer)
        layout.addWidget(self.banner)
        layout.addWidget(self.grid, 1)
        self.setCentralWidget(central)

        self.connection_label = ConnectionStatus()
        self.count_label = QLabel()
        self.count_label.setAccessibleName("Campaign count")
        self.statusBar().addPermanentWidget(self.count_label)
        self.statusBar().addWidget(self.connection_label)

        self._coalesce = QTimer(self)
        self._coalesce.setSingleShot(True)
        self._coalesce.setInterval(COALESCE_MS)
        self._coalesce.timeout.connect(self._coalesce_elapsed)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction(self.spreadsheet.export)
        file_menu.addSeparator()
        file_menu.addAction(self.settings_action)
        file_menu.addAction(self.reconnect_action)
        file_menu.addSeparator()
        self.account_menu.install(file_menu)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        self.menuBar().addMenu("&Edit").addAction(self.spreadsheet.copy)
        view_menu = self.menuBar().addMenu("&View")
        view_menu.addAction(self.columns.choose_action)
        view_menu.addAction(self.columns.reset_action)
        campaign_menu = self.menuBar().addMenu("&Campaign")
        context_menu = self.grid.context_menu
        campaign_menu.setToolTipsVisible(True)  # a disabled action's tooltip says why
        context_menu.setToolTipsVisible(True)
        campaign_menu.addAction(self.campaign_actions.new)
        campaign_menu.addSeparator()
        for action in self.campaign_actions.for_selection():
            campaign_menu.addAction(action)
            if action is self.campaign_actions.details:
                context_menu.addSeparator()
            context_menu.addAction(action)
        campaign_menu.addSeparator()
        context_menu.addSeparator()
        for action in self.campaign_actions.for_changes():
            campaign_menu.addAction(action)
            context_menu.addAction(action)
        self._add_theme_and_help_menus()

    def _connect(self) -> None:
        bridge = self.bridge
        bridge.statusChanged.connect(self._on_status)
        bridge.subscribed.connect(self._on_subscribed)
        bridge.eventsReady.connect(self._on_events_ready)
        bridge.campaignsLoaded.connect(self.grid.load)
        bridge.campaignFetched.connect(self.store.upsert)
        bridge.campaignGone.connect(self.store.remove)
        bridge.tokenExpired.connect(self.passwordNeeded)
        bridge.serverError.connect(self._on_server_error)
        # Launch asks first (self.flows); launch_selected() launches without asking.
        self.campaign_actions.refresh.triggered.connect(self.refresh_selected)
        self.campaign_actions.details.triggered.connect(self.open_selected)
        self.commands.busyChanged.connect(self._update_actions)
        self.grid.selectionChanged.connect(self._update_actions)
        self.grid.openRequested.connect(self.open_selected)
        self.grid.countsChanged.connect(self._show_counts)
        self.spreadsheet.message.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.banner.campaignClicked.connect(self.select_campaign)
        self.store.add_listener(self._on_store_change)
        tray = self.tray
        self.account_menu.install_in_tray(tray)
        tray.openRequested.connect(self.bring_to_front)
        tray.campaignRequested.connect(self.open_campaign)
        tray.quitRequested.connect(self.quitRequested)
        tray.muteToggled.connect(self._set_muted)

    # ---- live data ----------------------------------------------------------------------

    def _on_subscribed(self, topic: str, seq: int, _resumed: bool) -> None:
        if topic == self.marketer_topic:
            self.live_seq = seq

    def _on_events_ready(self) -> None:
        # The first events after a quiet spell show at once; those that follow within
        # COALESCE_MS wait for the timer and go in one batch: a burst stays one grid update
        # per COALESCE_MS, a lone change is not held back.
        if not self._coalesce.isActive():
            self.apply_pending_events()
            self._coalesce.start()

    def _coalesce_elapsed(self) -> None:
        if self.apply_pending_events():
            self._coalesce.start()  # still busy: the next batch waits its turn too

    def apply_pending_events(self) -> bool:
        """Apply every buffered event in one go: one change per row, then the alerts.

        Returns whether there was any."""
        frames = self.bridge.take_events()
        if not frames:
            return False
        result = self.dashboard.apply(frames, self.window_context())
        self.keeper.applied(frames, result.fetch)
        for campaign_id in sorted(result.fetch):
            self.bridge.fetch_campaign(campaign_id)
        for alert in result.alerts:
            if alert.decision.unread:
                self.tray.add_unread()
            if alert.decision.notify:
                self.tray.notify(alert.flash)
            if alert.decision.sound:
                self.sounds.play(alert.decision.sound)
        return True

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
            self._update_actions()

    def _on_status(self, status: LinkStatus) -> None:
        self.connection_label.set_status(status)

    @property
    def connection_text(self) -> str:
        return self.connection_label.text()

    def _on_server_error(self, code: str, message: str) -> None:
        self.dashboard.failed(f"The server refused a request ({code}): {message}")

    def _show_counts(self, shown: int, total: int) -> None:
        self.count_label.setText(count_text(shown, total))

    # ---- selection and actions ----------------------------------------------------------

    def selected_campaign(self) -> Campaign | None:
        return self.grid.selected_campaign()

    def select_campaign(self, campaign_id: int) -> bool:
        return self.grid.select_campaign(campaign_id)

    def _update_actions(self) -> None:
        campaign = self.selected_campaign()
        busy = campaign is not None and self.commands.is_busy(campaign.id)
        self.campaign_actions.update(campaign, busy=busy)

    def launch_selected(self) -> None:
        campaign = self.selected_campaign()
        if campaign is not None:
            self.commands.launch(campaign)

    def refresh_selected(self) -> None:
        campaign = self.selected_campaign()
        if campaign is not None:
            self.commands.refresh_offers(campaign)

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

    # ---- settings and window ------------------------------------------------------------

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

    def _offer_notifications(self) -> NotificationOffer | None:
        """The first time this account's window opens: offer desktop notifications."""
        if self.preferences.notifications_offered(self.user.email):
            return None
        offer = NotificationOffer(self.alert_settings, tray_available=self.tray.available)
        offer.answered.connect(self._notifications_answered)
        return offer

    def _notifications_answered(self, settings: AlertSettings | None) -> None:
        self.preferences.set_notifications_offered(self.user.email)
        if settings is not None:
            self.apply_alert_settings(settings)  # saves and syncs
        self.preferences.sync()

    def _add_theme_and_help_menus(self) -> None:
        self.theme_menu = ThemeMenu(self.preferences.theme, self)
        self.theme_menu.chosen.connect(self._theme_chosen)
        view_menu = menu_named(self.menuBar(), "&View")
        view_menu.addSeparator()
        view_menu.addMenu(self.theme_menu.menu)
        self.help_menu = HelpMenu(self, self.bridge, lambda: self._link)
        self.help_menu.add_to(self.menuBar())

    def _theme_chosen(self, theme: str) -> None:
        self.preferences.theme = theme
        self.preferences.sync()

    def bring_to_front(self) -> None:
        self.showNormal() if self.isMinimized() else self.show()
        self.raise_()
        self.activateWindow()
        self.tray.mark_read()

    def changeEvent(self, event: Any) -> None:
        super().changeEvent(event)
        if palette_changed(event):  # a theme change: colours made from the new palette
            self.grid.model.highlight = changed_cell_color()
            refresh_colors(self)
        if self.isActiveWindow():
            self.tray.mark_read()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.preferences.save_window_state("main", self.saveGeometry())
        self.columns.save()
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
        self.columns.save()
        self.connection_label.stop()
        self.keeper.close()  # the grid at close goes to disk
        self.grid.detach()
        self.tray.hide()
