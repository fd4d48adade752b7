"""Dialect-aware SQL pieces that SQLAlchemy's generic constructs do not cover."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def insert_ignoring_conflicts(
    session: AsyncSession, model: Any, index_elements: Sequence[Any] | None = None
) -> Any:
    """`INSERT ... ON CONFLICT DO NOTHING` on the session's backend (SQLite or PostgreSQL).

    It inserts into the model's table (a Core insert), so many rows go in one fast executemany.
    """
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table(model)).on_conflict_do_nothing(index_elements=index_elements)


def table(model: Any) -> Table:
    """The model's table: Core inserts of many rows skip the ORM's per-row bookkeeping."""
    return cast(Table, model.__table__)


def rowcount(result: Any) -> int:
    """Rows touched by an UPDATE or DELETE (0 when the driver cannot tell)."""
    return int(getattr(result, "rowcount", 0) or 0)
