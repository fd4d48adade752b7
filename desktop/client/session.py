"""A signed-in session: REST calls and live updates for one user, asyncio only.

`PulseSession` is what the UI drives. It signs in, loads the campaigns, keeps the one
subscription to the marketer topic, opens and closes campaign topics for detail views,
and reports everything to a `SessionListener` from the asyncio thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Coroutine
from typing import Any, Protocol

from desktop.client.accounts import session_end_message
from desktop.client.campaign_forms import CampaignDetails, TargetChoice
from desktop.client.errors import AuthError, ClientError, NotFoundError
from desktop.client.fetches import SerialFetches
from desktop.client.live import LiveClient, LiveListener
from desktop.client.models import Campaign, EventFrame, UserSession
from desktop.client.rest import RestClient
from pulse_core.topics import campaign_topic, marketer_topic

log = logging.getLogger(__name__)


class SessionListener(LiveListener, Protocol):
    def on_campaigns(self, campaigns: list[Campaign]) -> None:
        """The whole list, at start and after a resync."""

    def on_campaign(self, campaign: Campaign) -> None:
        """One campaign, fetched because an event said it changed."""

    def on_campaign_gone(self, campaign_id: int) -> None:
        """A campaign that the server no longer shows this user."""

    def on_session_ended(self, message: str) -> None:
        """The server ended the session (signed out elsewhere, password changed, user
        disabled); `message` tells the user. Unlike an expired token, do not sign in again
        by yourself."""


class PulseSession:
    """One user's connection to one server."""

    def __init__(self, server_url: str, listener: SessionListener, **live_options: Any) -> None:
        self.rest = RestClient(server_url)
        self.listener = listener
        self.user: UserSession | None = None
        self.live: LiveClient | None = None
        self._live_task: asyncio.Task[None] | None = None
        self._live_options = live_options
        self._tasks: set[asyncio.Task[None]] = set()
        self._fetches = SerialFetches(self._fetch_one)
        self._unfetched: set[int] = set()  # fetches that failed, tried again on resubscribe

    @property
    def server_url(self) -> str:
        return self.rest.server_url

    @property
    def marketer_topic(self) -> str:
        assert self.user is not None, "sign in first"
        return marketer_topic(self.user.marketer_id)

    async def login(self, email: str, password: str) -> UserSession:
        """Sign in; raises `AuthError`, `UnreachableError`, ... with a message for the user."""
        user = await self.rest.login(email, password)
        if user.marketer_name is None:
            with contextlib.suppress(Exception):
                name = await self.rest.marketer_name()
                if name:
                    user = UserSession(**{**_fields(user), "marketer_name": name})
        if user.role is None:  # a login answer without the role: the profile has it
            with contextlib.suppress(ClientError):
                user = await self.rest.profile(user)
        if self.user is not None and self.live is not None:
            self.live.set_token(user.token)  # signed in again after the token expired
        self.user = user
        return user

    def restore(self, user: UserSession) -> None:
        """Act as `user` without signing in (a grid kept on disk, a token from the keyring):
        an expired or empty token is refused when the server answers, as any expired one.
        A sign-in that answered first wins."""
        if self.user is None:
            self.user = user
            self.rest.token = user.token or None

    async def start(self, after: int | None = None) -> None:
        """Subscribe to the marketer topic, then load the grid (events after it will apply).

        With `after`, the seq of a grid kept on disk, resume instead of loading: the server
        replays what came since (or says resync, and the grid is reloaded then)."""
        assert self.user is not None, "sign in first"
        if self.live is None:
            self.live = LiveClient(
                self.server_url,
                self.user.token,
                self,
                fetch_history=self._history_page,
                **self._live_options,
            )
            self._live_task = asyncio.create_task(self.live.run(), name="pulse-live")
            await self.live.subscribe(self.marketer_topic, after)
        if after is None:
            await self.reload()

    async def reload(self) -> None:
        self.listener.on_campaigns(await self._call(self.rest.campaigns()))

    async def fetch_campaign(self, campaign_id: int) -> None:
        """Fetch one campaign for `on_campaign`: one fetch at a time per campaign, and a
        request during a fetch gets one more after it. A failed fetch is tried again when
        the marketer topic is subscribed again (after a reconnect)."""
        try:
            await self._fetches.request(campaign_id)
        except Exception:
            self._unfetched.add(campaign_id)
            raise

    async def _fetch_one(self, campaign_id: int) -> None:
        try:
            campaign = await self._call(self.rest.campaign(campaign_id))
        except NotFoundError:
            self._unfetched.discard(campaign_id)
            self.listener.on_campaign_gone(campaign_id)
            return
        self._unfetched.discard(campaign_id)
        self.listener.on_campaign(campaign)

    async def launch(self, campaign_id: int) -> str:
        """Launch; returns the flash text of the server's answer."""
        answer = await self._call(self.rest.launch(campaign_id))
        return str(answer.get("message") or "")

    async def refresh_offers(self, campaign_id: int) -> tuple[str, str | None]:
        """Start an offer refresh; returns the flash text and the refresh's request id."""
        answer = await self._call(self.rest.refresh_offers(campaign_id))
        request_id = answer.get("request_id")
        return str(answer.get("message") or ""), str(request_id) if request_id else None

    # ---- changing campaigns: each answer goes to the grid at once (its event follows) -----

    async def targets(self) -> list[TargetChoice]:
        targets: list[TargetChoice] = await self._call(self.rest.targets())
        return targets

    async def campaign_details(self, campaign_id: int) -> CampaignDetails:
        details: CampaignDetails = await self._call(self.rest.campaign_details(campaign_id))
        return details

    async def create_campaign(self, body: dict[str, Any]) -> Campaign:
        return self._changed(await self._call(self.rest.create_campaign(body)))

    async def edit_campaign(self, campaign_id: int, body: dict[str, Any]) -> Campaign:
        return self._changed(await self._call(self.rest.edit_campaign(campaign_id, body)))

    async def change_state(self, campaign_id: int, action: str) -> Campaign:
        """Pause, resume or archive (`action`)."""
        return self._changed(await self._call(self.rest.change_state(campaign_id, action)))

    async def deposit(self, campaign_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """Add money; the new balance reaches the grid with the deposit's event."""
        answer: dict[str, Any] = await self._call(self.rest.deposit(campaign_id, body))
        return answer

    def _changed(self, campaign: Campaign) -> Campaign:
        self.listener.on_campaign(campaign)
        return campaign

    async def history(
        self, campaign_id: int, *, after: int | None = None, limit: int = 100
    ) -> list[EventFrame]:
        topic = campaign_topic(campaign_id)
        frames: list[EventFrame] = await self._call(
            self.rest.events(topic, after=after, limit=limit)
        )
        return frames

    async def open_campaign(self, campaign_id: int) -> None:
        if self.live is not None:
            await self.live.subscribe(campaign_topic(campaign_id))

    async def close_campaign(self, campaign_id: int) -> None:
        if self.live is not None:
            await self.live.unsubscribe(campaign_topic(campaign_id))

    async def logout(self) -> None:
        """End the session on the server; signing out here goes on even if that fails."""
        try:
            await self.rest.logout()
        except ClientError as exc:
            log.info("the server did not end the session: %s", exc)

    def reconnect_now(self) -> None:
        if self.live is not None:
            self.live.reconnect_now()

    async def close(self) -> None:
        if self.live is not None:
            await self.live.close()
        if self._live_task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._live_task, 5)
        await self.rest.aclose()

    async def _call(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        except AuthError as exc:
            if self.user is not None:
                self._refused(exc.reason)
            raise

    async def _history_page(self, topic: str, after: int) -> list[EventFrame]:
        return await self.rest.events(topic, after=after, limit=100)

    # ---- LiveListener: forward, reloading the grid when the marketer topic resyncs -------

    def on_status(self, status: Any) -> None:
        self.listener.on_status(status)

    def on_subscribed(self, topic: str, seq: int, resumed: bool) -> None:
        if self.user is not None and topic == self.marketer_topic:
            for campaign_id in sorted(self._unfetched):
                self._spawn(self._quietly(self.fetch_campaign(campaign_id), "fetch a campaign"))
        self.listener.on_subscribed(topic, seq, resumed)

    def on_event(self, frame: EventFrame) -> None:
        self.listener.on_event(frame)

    def on_resync(self, topic: str) -> None:
        if self.user is not None and topic == self.marketer_topic:
            self._spawn(self._quietly(self.reload(), "reload the campaigns after a resync"))
        self.listener.on_resync(topic)

    def on_token_expired(self) -> None:
        self._refused(self.live.auth_reason if self.live is not None else "")

    def _refused(self, reason: str) -> None:
        """The server refused the token: expired (sign in again) or the session ended (say why)."""
        message = session_end_message(reason)
        if message is None:
            self.listener.on_token_expired()
        else:
            self.listener.on_session_ended(message)

    def on_server_error(self, code: str, message: str, topic: str | None) -> None:
        self.listener.on_server_error(code, message, topic)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _quietly(coro: Awaitable[None], what: str) -> None:
        try:
            await coro
        except Exception as exc:
            log.warning("could not %s: %s", what, exc)


def _fields(user: UserSession) -> dict[str, Any]:
    return {name: getattr(user, name) for name in UserSession.__dataclass_fields__}
