"""Signed login tokens (JWT, HS256): each names its login session and expires."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import jwt

ALGORITHM = "HS256"
AUDIENCE = "campaign-pulse"
# Ids beyond this are not ours (a 64-bit id, and JSON numbers lose precision above 2**53).
MAX_ID = 2**53


@dataclass(frozen=True, slots=True)
class Principal:
    """What a valid signature says: a user of one marketer, in one login session."""

    user_id: int
    marketer_id: int
    email: str
    expires_at: datetime
    session_id: str


class InvalidToken(Exception):
    """The token is missing, forged or expired."""


def issue_token(
    secret: str,
    *,
    user_id: int,
    marketer_id: int,
    email: str,
    session_id: str,
    expires_at: datetime,
) -> str:
    claims = {
        "sub": str(user_id),
        "mkt": marketer_id,
        "email": email,
        "sid": session_id,
        "aud": AUDIENCE,
        "exp": expires_at,
        "iat": datetime.now(UTC),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_token(secret: str, token: str) -> Principal:
    """The token's principal; raises `InvalidToken` for anything but a valid, current token."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            options={"require": ["exp", "sub", "aud", "sid"]},
        )
        principal = Principal(
            user_id=int(claims["sub"]),
            marketer_id=int(claims["mkt"]),
            email=str(claims["email"]),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
            session_id=str(claims["sid"]),
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("your session has expired: log in again") from None
    except (jwt.InvalidTokenError, KeyError, TypeError, ValueError, OverflowError, OSError):
        raise InvalidToken("invalid token: log in again") from None
    if not (0 < principal.user_id <= MAX_ID and 0 < principal.marketer_id <= MAX_ID):
        raise InvalidToken("invalid token: log in again")
    return principal
