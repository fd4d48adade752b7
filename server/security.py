"""Signed login tokens (JWT, HS256) that expire."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

ALGORITHM = "HS256"
AUDIENCE = "campaign-pulse"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user of one marketer."""

    user_id: int
    marketer_id: int
    email: str
    expires_at: datetime


class InvalidToken(Exception):
    """The token is missing, forged or expired."""


def issue_token(
    secret: str, *, user_id: int, marketer_id: int, email: str, ttl_seconds: int
) -> tuple[str, datetime]:
    expires_at = datetime.now(UTC) + timedelta(seconds=ttl_seconds)
    claims = {
        "sub": str(user_id),
        "mkt": marketer_id,
        "email": email,
        "aud": AUDIENCE,
        "exp": expires_at,
        "iat": datetime.now(UTC),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM), expires_at


def read_token(secret: str, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            options={"require": ["exp", "sub", "aud"]},
        )
        return Principal(
            user_id=int(claims["sub"]),
            marketer_id=int(claims["mkt"]),
            email=str(claims["email"]),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("your session has expired: log in again") from None
    except (jwt.InvalidTokenError, KeyError, TypeError, ValueError):
        raise InvalidToken("invalid token: log in again") from None
