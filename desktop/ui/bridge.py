"""The thin Qt adapter around `PulseSession`: callbacks in, GUI-thread signals out.

Every listener callback arrives on the asyncio thread and is re-posted to the GUI thread
through one queued signal, so every public signal of `ClientBridge` is emitted in the GUI
thread. Marketer-topic events are buffered and announced once per batch (`eventsReady`);
the window drains them with `take_events()` on its own coalescing timer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot

from desktop.client.live import LinkStatus
from desktop.client.models import Campaign, EventFrame, UserSession
from desktop.client.session import PulseSession
from desktop.ui.runner import AsyncRunner

log = logging.getLogger(__name__)
Done = Callable[[Any, BaseException | None], None]


class ClientBridge(QObject):
    """One session on the runner's loop, seen from the GUI thread."""

    statusChanged = Signal(object)  # LinkStatus
    subscribed = Signal(str, int, bool)  # topic, seq, resumed
    eventsReady = Signal()  # marketer-topic events wait in take_events()
    campaignTopicEvent = Signal(object)  # EventFrame of a campaign:<id> topic
    resynced = Signal(str)
    campaignsLoaded = Signal(object)  # list[Campaign]
    campaignFetched = Signal(object)  # Campaign
    campaignGone = Signal(int)
    tokenExpired = Signal()
    sessionEnded = Signal(str)  # what to tell the user: the server ended the session
    serverError = Signal(str, str)  # code, message

    _post = Signal(object, object)  # (callable, args): asyncio thread -> GUI thread

    def __init__(
        self, runner: AsyncRunner, server_url: str, parent: QObject | None = None, **options: Any
    ) -> None:
        super().__init__(parent)
        self.runner = runner
        self._post.connect(self._run_posted, Qt.ConnectionType.QueuedConnection)
        self._lock = threading.Lock()
        self._events: list[EventFrame] = []
        self._closed = False
        self.session = PulseSession(server_url, self, **options)

    # ---- commands (GUI thread) ----------------------------------------------------------

    @property
    def server_url(self) -> str:
        return self.session.server_url

    @property
    def user(self) -> UserSession | None:
        return self.session.user

    def call(self, coro: Coroutine[Any, Any, Any], done: Done | None = None) -> None:
        """Run `coro` on the loop; `done(result, error)` is called later in the GUI thread."""
        future = self.runner.submit(coro)

        def finished(fut: Any) -> None:
            if fut.cancelled():
                return
            error = fut.exception()
            if error is not None and done is None:
                log.warning("background call failed: %s", error)
            if done is not None and not self._closed:
                self._post.emit(done, (None if error else fut.result(), error))

        future.add_done_callback(finished)

    def restore(self, user: UserSession) -> None:
        """Act as `user` without signing in (before anything runs on the loop: no race)."""
        self.session.restore(user)

    def login(self, email: str, password: str, done: Done) -> None:
        self.call(self.session.login(email, password), done)

    def start(self, done: Done | None = None, *, after: int | None = None) -> None:
        """Load the grid and go live; with `after` (a cached grid's seq), resume from it."""
        self.call(self.session.start(after), done)

    def logout(self, done: Done) -> None:
        self.call(self.session.logout(), done)

    def reload(self, done: Done | None = None) -> None:
        self.call(self.session.reload(), done)

    def fetch_campaign(self, campaign_id: int) -> None:
        self.call(self.session.fetch_campaign(campaign_id))

    def launch(self, campaign_id: int, done: Done) -> None:
        self.call(self.session.launch(campaign_id), done)

    def refresh_offers(self, campaign_id: int, done: Done) -> None:
        self.call(self.session.refresh_offers(campaign_id), done)

    def history(self, campaign_id: int, after: int | None, done: Done) -> None:
        self.call(self.session.history(campaign_id, after=after), done)

    def open_campaign(self, campaign_id: int) -> None:
        self.call(self.session.open_campaign(campaign_id))

    def close_campaign(self, campaign_id: int) -> None:
        if not self._closed:
            self.call(self.session.close_campaign(campaign_id))

    def reconnect_now(self) -> None:
        self.runner.call_soon(self.session.reconnect_now)

    def take_events(self) -> list[EventFrame]:
        with self._lock:
            events, self._events = self._events, []
        return events

    def close(self, timeout: float = 5.0) -> None:
        """Close the session and wait for it (the loop keeps running)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.runner.submit(self.session.close()).result(timeout)
        except Exception as exc:
            log.info("closing the session: %s", exc)

    @Slot(object, object)
    def _run_posted(self, function: Callable[..., None], args: tuple[Any, ...]) -> None:
        if not self._closed:
            function(*args)

    def _emit(self, signal: Any, *args: Any) -> None:
        if not self._closed:
            self._post.emit(signal.emit, args)

    # ---- SessionListener (asyncio thread) -----------------------------------------------

    def on_status(self, status: LinkStatus) -> None:
        self._emit(self.statusChanged, status)

    def on_subscribed(self, topic: str, seq: int, resumed: bool) -> None:
        self._emit(self.subscribed, topic, seq, resumed)

    def on_event(self, frame: EventFrame) -> None:
        user = self.session.user
        if user is not None and frame.topic == self.session.marketer_topic:
            with self._lock:
                first = not self._events
                self._events.append(frame)
            if first:
                self._emit(self.eventsReady)
        else:
            self._emit(self.campaignTopicEvent, frame)

    def on_resync(self, topic: str) -> None:
        self._emit(self.resynced, topic)

    def on_token_expired(self) -> None:
        self._emit(self.tokenExpired)

    def on_session_ended(self, message: str) -> None:
        self._emit(self.sessionEnded, message)

    def on_server_error(self, code: str, message: str, topic: str | None) -> None:
        self._emit(self.serverError, code, message)

    def on_campaigns(self, campaigns: list[Campaign]) -> None:
        self._emit(self.campaignsLoaded, campaigns)

    def on_campaign(self, campaign: Campaign) -> None:
        self._emit(self.campaignFetched, campaign)

    def on_campaign_gone(self, campaign_id: int) -> None:
        self._emit(self.campaignGone, campaign_id)
