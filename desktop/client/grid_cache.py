"""The last grid of each account on disk, to open with while the server is down.

One JSON file per account in the user cache directory: who was signed in (never the token),
the campaigns (each with its `as_of_seq`), the marketer topic's `seq` they reflect, and when
they were last known live. A file is replaced atomically (written beside, then renamed); one
that is corrupt or of another format version is ignored, with a log line.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import platformdirs

from desktop.client.models import Campaign, EventFrame, TargetInfo, UserSession
from pulse_core.roles import Role

log = logging.getLogger(__name__)
VERSION = 1
_OTHER_FIELDS = tuple(f.name for f in fields(Campaign) if f.name not in ("stats", "target"))
_TARGET_FIELDS = tuple(f.name for f in fields(TargetInfo))
_JSON_TYPES = frozenset((str, int, float, bool))
_USER_FIELDS = tuple(f.name for f in fields(UserSession) if f.name != "token")


def default_directory() -> Path:
    return Path(platformdirs.user_cache_dir("campaign-pulse", appauthor=False)) / "grids"


@dataclass(frozen=True, slots=True)
class CachedGrid:
    """One account's grid as it was last seen."""

    user: UserSession  # its token is "": tokens live in the keyring only
    seq: int  # the marketer topic's seq that the campaigns reflect: resume after it
    as_of: datetime  # when the data was last known live, in UTC
    campaigns: list[Campaign]


class GridCache:
    """The per-account files of one directory."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or default_directory()

    def path(self, server_url: str, email: str) -> Path:
        account = f"{server_url} {email.lower()}"
        digest = hashlib.sha256(account.encode()).hexdigest()[:16]
        readable = "".join(c if c.isalnum() else "_" for c in email.lower())[:40]
        return self.directory / f"{readable}-{digest}.json"

    def load(self, server_url: str, email: str) -> CachedGrid | None:
        """The account's grid, or None when there is none or it cannot be used."""
        path = self.path(server_url, email)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read the cached grid %s: %s", path, exc)
            return None
        try:
            return decode(data, server_url, email)
        except CacheFormatError as exc:
            log.warning("ignoring the cached grid %s: %s", path, exc)
            return None

    def save(self, server_url: str, grid: CachedGrid, memo: Memo | None = None) -> None:
        """Replace the account's file at once: a reader sees the old one or the new one."""
        path = self.path(server_url, grid.user.email)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = encode(server_url, grid, memo)
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=path.stem, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def remove(self, server_url: str, email: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(server_url, email).unlink()


class CacheFormatError(ValueError):
    """A cached grid that this version of the app cannot use."""


# Campaign id -> (the campaign, its JSON text). Campaigns are immutable and a change makes a
# new object, so a row whose object is the one encoded last time is not encoded again.
Memo = dict[int, tuple[Campaign, str]]


def encode(server_url: str, grid: CachedGrid, memo: Memo | None = None) -> bytes:
    """The file's bytes; with `memo` (kept between writes of one grid), only the rows that
    changed since the last write are encoded again."""
    user = grid.user
    head = {
        "version": VERSION,
        "server_url": server_url,
        "user": {name: _plain(getattr(user, name)) for name in _USER_FIELDS},
        "topic": user.marketer_topic,
        "seq": grid.seq,
        "as_of": grid.as_of.astimezone(UTC).isoformat(),
    }
    known = memo or {}
    encoded: Memo = {}
    for campaign in grid.campaigns:
        last = known.get(campaign.id)
        if last is not None and last[0] is campaign:
            encoded[campaign.id] = last
        else:
            encoded[campaign.id] = (campaign, _json(campaign_to_wire(campaign)))
    if memo is not None:
        memo.clear()
        memo.update(encoded)
    rows = ",".join(text for _campaign, text in encoded.values())
    return (_json(head)[:-1] + ',"campaigns":[' + rows + "]}").encode()


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Reading 10,000 campaigns makes ~300,000 objects and no cycles: the cyclic garbage
    collector would walk them over and over for nothing (half the time of a read)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def decode(data: bytes, server_url: str, email: str) -> CachedGrid:
    with _collector_paused():
        return _decode(data, server_url, email)


def _decode(data: bytes, server_url: str, email: str) -> CachedGrid:
    try:
        document = json.loads(data)
        version = document.get("version")
        if version != VERSION:
            raise CacheFormatError(f"format version {version!r}, this app reads {VERSION}")
        stored = document["user"]
        values = {name: stored[name] for name in _USER_FIELDS if name in stored}
        if isinstance(values.get("role"), str):
            values["role"] = Role(values["role"])
        user = UserSession(token="", **values)
        if document["server_url"] != server_url or user.email.lower() != email.lower():
            raise CacheFormatError("it belongs to another account")
        if document["topic"] != user.marketer_topic:
            raise CacheFormatError("its topic is not its marketer's")
        seq = document["seq"]
        if not isinstance(seq, int) or seq < 0:
            raise CacheFormatError(f"bad seq {seq!r}")
        as_of = datetime.fromisoformat(document["as_of"])
        campaigns = [Campaign.from_wire(item) for item in document["campaigns"]]
    except CacheFormatError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CacheFormatError(f"unreadable ({type(exc).__name__}: {exc})") from None
    return CachedGrid(user, seq, as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC), campaigns)


def campaign_to_wire(campaign: Campaign) -> dict[str, Any]:
    """The campaign in the shape of `GET /api/campaigns`, which `Campaign.from_wire` reads."""
    data = {name: _plain(getattr(campaign, name)) for name in _OTHER_FIELDS}
    data["stats"] = campaign.stats.to_wire()
    target = campaign.target
    data["target"] = {name: _plain(getattr(target, name)) for name in _TARGET_FIELDS}
    return data


def _plain(value: Any) -> Any:
    """A JSON value for a field: enums by value, records as objects, tuples as lists."""
    if value is None or type(value) in _JSON_TYPES:
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    return value


def as_of_text(as_of: datetime, now: datetime | None = None) -> str:
    """`09:12` in local time, with the day when it was not today: `12 Mar 09:12`."""
    local = as_of.astimezone()
    today = (now or datetime.now(UTC)).astimezone().date()
    return local.strftime("%H:%M" if local.date() == today else "%d %b %H:%M")


class GridCursor:
    """The marketer topic's seq that the grid on screen reflects: where a resume starts.

    Events are applied in order, so the grid reflects every event up to the last one applied,
    except changes still being fetched (an event that changes a campaign's state does not
    carry the new state). Until that fetch answers, the cursor stays just before the event
    that asked for it, so that a resume from the cache replays it.
    """

    def __init__(self, seq: int | None = None) -> None:
        self._seq = seq
        self._waiting: dict[int, int] = {}  # campaign id -> seq of the event that wants it

    @property
    def seq(self) -> int | None:
        if self._seq is None or not self._waiting:
            return self._seq
        return min(self._seq, min(self._waiting.values()) - 1)

    def subscribed(self, seq: int, resumed: bool) -> None:
        """A new subscription's `seq`: the grid loaded after it reflects at least that."""
        if not resumed:
            self._seq = seq
            self._waiting.clear()

    def applied(self, frames: Iterable[EventFrame], fetch: Iterable[int]) -> None:
        """A batch went into the grid; `fetch` are the campaigns it asked to fetch."""
        first: dict[int, int] = {}
        for frame in frames:
            first.setdefault(frame.campaign_id, frame.seq)
            self._seq = frame.seq if self._seq is None else max(self._seq, frame.seq)
        for campaign_id in fetch:
            if campaign_id in first:
                self._waiting.setdefault(campaign_id, first[campaign_id])

    def fetched(self, campaign: Campaign) -> None:
        wanted = self._waiting.get(campaign.id)
        if wanted is not None and (campaign.as_of_seq is None or campaign.as_of_seq >= wanted):
            del self._waiting[campaign.id]

    def gone(self, campaign_id: int) -> None:
        self._waiting.pop(campaign_id, None)

    def reloaded(self) -> None:
        """The whole list was read again: nothing is waiting any more."""
        self._waiting.clear()


class CacheWriter:
    """Writes grids in a thread of its own, in order, so that a write never blocks the window;
    a failed write is logged and the next one tries again."""

    def __init__(self, cache: GridCache) -> None:
        self.cache = cache
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="pulse-grid-cache")
        self._last: Future[None] | None = None
        self._memo: Memo = {}  # used in the writer's thread only

    def write(self, server_url: str, grid: CachedGrid) -> Future[None]:
        self._last = self._executor.submit(self._save, server_url, grid)
        return self._last

    def _save(self, server_url: str, grid: CachedGrid) -> None:
        try:
            self.cache.save(server_url, grid, self._memo)
        except Exception as exc:  # a full disk must not take the app down
            log.warning("could not write the cached grid of %s: %s", grid.user.email, exc)

    def close(self) -> None:
        """Finish the writes under way (the last one is the grid at close)."""
        self._executor.shutdown(wait=True)
