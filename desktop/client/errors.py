"""Typed errors of the desktop client; each message tells the user what to do next."""

from __future__ import annotations


class ClientError(Exception):
    """Base of every error the desktop client raises at its boundary."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class AuthError(ClientError):
    """Wrong email or password, or the login token expired (HTTP 401, close code 4401)."""

    def __init__(self, message: str, *, status: int | None = None, reason: str = "") -> None:
        super().__init__(message, status=status)
        self.reason = reason  # the server's own words (a 401's detail): why, for example logout


class UnreachableError(ClientError):
    """The server did not answer: wrong address, server down or network trouble."""


class NotFoundError(ClientError):
    """The campaign does not exist or belongs to another marketer (HTTP 404)."""


class ConflictError(ClientError):
    """The action does not fit the campaign's state (HTTP 409); the message says why."""


class BadRequestError(ClientError):
    """The server refused the input (HTTP 400/422)."""


class ServerError(ClientError):
    """The server failed (HTTP 5xx) or answered something this client does not understand."""


class ForbiddenError(ClientError):
    """Signed in, but the user's role may not do this (HTTP 403); the message says why."""


class ValidationError(BadRequestError):
    """The server refused named fields (HTTP 422): `problems` holds each (location, message)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        problems: tuple[tuple[tuple[str | int, ...], str], ...] = (),
    ) -> None:
        super().__init__(message, status=status)
        self.problems = problems
