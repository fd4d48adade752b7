"""The accounts this computer signs in to, each a server and an email, and why a session ended.

Plain Python: the list is kept as JSON text wherever the UI keeps its preferences; passwords
and sign-in tokens go to the system keyring (`credentials`), never into that text.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from desktop.client import credentials

log = logging.getLogger(__name__)
MAX_ACCOUNTS = 20

# The close reasons (and 401 details) of a session that the server ended, as
# docs/protocol.md words them; any other reason is a token that expired or is unknown, and
# signing in again with a known password is all it takes.
_ENDED = {
    "you logged out": "signed out elsewhere",
    "your password was changed": "your password was changed",
    "your account is disabled": "your account is disabled: ask an admin of your company",
}


def session_end_message(reason: str) -> str | None:
    """What to tell the user when the server ended their session, else None.

    `reason` is the 4401 close reason or the 401 detail; None means the token merely
    expired (or is unknown), so signing in again quietly is right.
    """
    text = reason.strip().lower()
    for start, why in _ENDED.items():
        if text.startswith(start):
            return f"Your session ended: {why}. Sign in again to continue."
    return None


@dataclass(frozen=True, slots=True)
class Account:
    """One server and one email; `name` is the marketer's name, for menus."""

    server_url: str
    email: str
    name: str = ""

    def same(self, other: Account) -> bool:
        return (self.server_url, self.email.lower()) == (other.server_url, other.email.lower())

    def label(self, *, with_server: bool = False) -> str:
        """`Acme Outdoor (alice@acme.example)`, with the server's host when it tells apart."""
        text = f"{self.name} ({self.email})" if self.name else self.email
        return f"{text} on {urlsplit(self.server_url).netloc}" if with_server else text


class Accounts:
    """The known accounts, the last used first."""

    def __init__(self, accounts: Iterable[Account] = ()) -> None:
        self._accounts: list[Account] = []
        for account in accounts:
            if self.find(account.server_url, account.email) is None:
                self._accounts.append(account)

    @classmethod
    def from_json(cls, text: str) -> Accounts:
        """The list kept by `to_json`; anything unreadable is skipped (and logged)."""
        if not text:
            return cls()
        try:
            parsed = [_account(item) for item in json.loads(text)]
        except (ValueError, TypeError) as exc:
            log.warning("ignoring the saved list of accounts: %s", exc)
            return cls()
        return cls(account for account in parsed if account is not None)

    def to_json(self) -> str:
        return json.dumps(
            [{"server_url": a.server_url, "email": a.email, "name": a.name} for a in self]
        )

    def __iter__(self) -> Iterator[Account]:
        return iter(self._accounts)

    def __len__(self) -> int:
        return len(self._accounts)

    @property
    def several_servers(self) -> bool:
        return len({a.server_url for a in self}) > 1

    def find(self, server_url: str, email: str) -> Account | None:
        probe = Account(server_url, email)
        return next((a for a in self._accounts if a.same(probe)), None)

    def used(self, account: Account) -> Accounts:
        """The list with `account` first (its name updated when it brings one)."""
        known = self.find(account.server_url, account.email)
        if known is not None and not account.name:
            account = replace(account, name=known.name)
        rest = [a for a in self._accounts if not a.same(account)]
        return Accounts([account, *rest][:MAX_ACCOUNTS])

    def without(self, account: Account) -> Accounts:
        return Accounts(a for a in self._accounts if not a.same(account))


def _account(item: Any) -> Account | None:
    if not isinstance(item, dict):
        return None
    server_url, email = item.get("server_url"), item.get("email")
    if not isinstance(server_url, str) or not isinstance(email, str) or not email:
        return None
    return Account(server_url, email, str(item.get("name") or ""))


# ---- the sign-in token, kept in the keyring beside the password -------------------------
# A token lets the app open an account's cached grid while the server is down, and resume
# it when the server is back, without asking for the password.


def _token_slot(email: str) -> str:
    return f"{email} (sign-in token)"


def load_token(account: Account) -> str | None:
    return credentials.load_password(account.server_url, _token_slot(account.email))


def save_token(account: Account, token: str) -> bool:
    return credentials.save_password(account.server_url, _token_slot(account.email), token)


def forget_token(account: Account) -> None:
    credentials.forget_password(account.server_url, _token_slot(account.email))
