"""What a client does when its connection ends: retry after a jittered delay, log in again,
or give up, by the close code (docs/protocol.md, Close codes).

The adapter says how the connection ended (`Closed`, `Refused`, `Unreachable`, `BadAddress`);
`ReconnectPolicy.decide` answers `Retry(delay)`, `Reauthenticate` or `GiveUp`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from pulse_core.names import CloseCode

STABLE_CONNECTION_SECONDS = 10.0
AUTH_REFUSED_STATUSES = frozenset({401, 403})


@dataclass
class Backoff:
    """Delays of `initial * factor**n`, capped at `maximum`, each jittered down by up to half.

    `reset()` after a connection that stayed up, so the next outage starts quick again.
    """

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 30.0
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random)
    attempts: int = 0

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.initial * self.factor**self.attempts)
        self.attempts += 1
        return ceiling * (1 - self.jitter * self.rng.random())

    def reset(self) -> None:
        self.attempts = 0


# ---- how a connection ended ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Closed:
    """The connection was open and ended; `code` is None when no close frame came."""

    code: int | None
    reason: str = ""

    def describe(self) -> str:
        return f"connection closed (code {self.code})" if self.code else "connection lost"


@dataclass(frozen=True, slots=True)
class Refused:
    """The server answered the upgrade request with an HTTP `status` instead."""

    status: int
    reason: str = ""

    def describe(self) -> str:
        return self.reason or f"server refused the connection (HTTP {self.status})"


@dataclass(frozen=True, slots=True)
class Unreachable:
    """No connection: refused, timed out, a network or TLS failure, or a bug in the adapter."""

    reason: str

    def describe(self) -> str:
        return self.reason


@dataclass(frozen=True, slots=True)
class BadAddress:
    """The server address cannot be connected to at all."""

    reason: str

    def describe(self) -> str:
        return f"Bad server address: {self.reason}"


Ending = Closed | Refused | Unreachable | BadAddress


# ---- what to do about it ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Retry:
    """Reconnect after `delay` seconds, resubscribing each topic with `after`."""

    delay: float
    attempt: int  # 1 for the first retry after a connection that worked
    reason: str


@dataclass(frozen=True, slots=True)
class Reauthenticate:
    """The token is no good (expired, or its session ended): log in again, then reconnect.
    `reason` is the server's close reason, meant for the user; it may be empty."""

    reason: str


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Retrying cannot help."""

    reason: str


Decision = Retry | Reauthenticate | GiveUp


class ReconnectPolicy:
    """The one retry-or-give-up rule of every client, with its backoff."""

    def __init__(
        self, backoff: Backoff | None = None, *, stable_seconds: float = STABLE_CONNECTION_SECONDS
    ) -> None:
        self.backoff = backoff or Backoff()
        self.stable_seconds = stable_seconds

    def decide(self, ending: Ending, *, lasted: float = 0.0) -> Decision:
        """After `ending`, `lasted` seconds after the connection attempt began."""
        if isinstance(ending, BadAddress):
            return GiveUp(ending.describe())
        if isinstance(ending, Closed) and ending.code == CloseCode.UNAUTHORIZED:
            return Reauthenticate(ending.reason)
        if isinstance(ending, Refused) and ending.status in AUTH_REFUSED_STATUSES:
            return Reauthenticate(ending.reason)
        if lasted > self.stable_seconds:
            self.backoff.reset()
        delay = self.backoff.next_delay()
        return Retry(delay, self.backoff.attempts, ending.describe())
