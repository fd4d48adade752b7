"""Members and their tags from a CSV file (`handle,tags`): read strictly, then written all at once.

The write is set-based: each step is one statement per batch of thousands of members, with the
batch passed as one array (PostgreSQL `unnest`) or one JSON text (SQLite `json_each`).
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from pulse_core.names import AuditAction
from pulse_data import audit
from pulse_data.database import Database

HEADER = ("handle", "tags")
MAX_NAME_LENGTH = 100  # members.handle, trait_groups.name and traits.name are String(100)
BATCH = 20_000
BULK_CHECK_ROWS = 10_000  # tags in one batch from which foreign keys are checked at the end

log = logging.getLogger(__name__)
Tag = tuple[str, str]  # (trait group, trait)
Progress = Callable[[str, int, int], None]  # (step, done, total)


class MemberFileError(ValueError):
    """A line of the file that cannot be imported; the message starts with `line N:`."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line


@dataclass(frozen=True, slots=True)
class MemberRow:
    line: int
    handle: str
    tags: frozenset[Tag]


@dataclass(frozen=True, slots=True)
class ImportSummary:
    members_added: int = 0
    members_updated: int = 0
    members_unchanged: int = 0
    trait_groups_added: int = 0
    traits_added: int = 0


# ---- reading ----------------------------------------------------------------------------------


def read_members(raw_lines: Iterable[bytes]) -> Iterator[MemberRow]:
    """The members of a CSV file given as its raw lines (a file opened in binary mode).

    Raises `MemberFileError` naming the first bad line: bad encoding, wrong header, missing or
    too long handle, a tag that is not `Group:Trait`, a handle seen before.
    """
    reader = csv.reader(_decoded(raw_lines), strict=True)
    parse_tags = _TagReader()
    seen: dict[str, int] = {}
    header = _next_row(reader, 1)
    if header is None or tuple(field.strip().lower() for field in header) != HEADER:
        raise MemberFileError(1, "the first line must be the header `handle,tags`")
    while True:
        line = reader.line_num + 1  # where the next record starts (a quoted field may span lines)
        fields = _next_row(reader, line)
        if fields is None:
            return
        if not fields or fields == [""]:
            continue  # a blank line
        if len(fields) != len(HEADER):
            raise MemberFileError(
                line,
                f"expected 2 fields (handle,tags), found {len(fields)}; quote a field "
                "that holds a comma",
            )
        handle = fields[0].strip()
        if not handle:
            raise MemberFileError(line, "the handle is missing")
        if len(handle) > MAX_NAME_LENGTH:
            raise MemberFileError(line, f"the handle is longer than {MAX_NAME_LENGTH} characters")
        if handle in seen:
            raise MemberFileError(line, f"the handle {handle!r} is already on line {seen[handle]}")
        seen[handle] = line
        yield MemberRow(line, handle, parse_tags(fields[1], line))


def _decoded(raw_lines: Iterable[bytes]) -> Iterator[str]:
    for number, raw in enumerate(raw_lines, start=1):
        if number == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")  # the byte order mark some editors write
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            raise MemberFileError(number, "not UTF-8 text (save the file as UTF-8)") from None


def _next_row(reader: Any, line: int) -> list[str] | None:
    try:
        row: list[str] = next(reader)
    except StopIteration:
        return None
    except csv.Error as exc:
        raise MemberFileError(line, f"not valid CSV ({exc})") from None
    return row


class _TagReader:
    """Parses `tags` fields; each distinct piece is checked once (a file repeats a few tags)."""

    def __init__(self) -> None:
        self._known: dict[str, Tag | None] = {}  # None: a blank piece, as in a trailing `;`

    def __call__(self, field: str, line: int) -> frozenset[Tag]:
        tags = []
        for piece in field.split(";"):
            try:
                tag = self._known[piece]
            except KeyError:
                tag = self._known[piece] = _parse_tag(piece.strip(), line)
            if tag is not None:
                tags.append(tag)
        return frozenset(tags)


def _parse_tag(piece: str, line: int) -> Tag | None:
    if not piece:
        return None
    group, colon, trait = piece.partition(":")
    group, trait = group.strip(), trait.strip()
    if not colon:
        raise MemberFileError(line, f"the tag {piece!r} is not `Group:Trait`")
    if not group or not trait:
        raise MemberFileError(line, f"the tag {piece!r} needs a group and a trait")
    if len(group) > MAX_NAME_LENGTH or len(trait) > MAX_NAME_LENGTH:
        raise MemberFileError(
            line, f"the tag {piece!r} has a name longer than {MAX_NAME_LENGTH} characters"
        )
    return group, trait


# ---- writing ----------------------------------------------------------------------------------


async def import_members(
    db: Database,
    rows: Sequence[MemberRow],
    *,
    actor: audit.Actor,
    source: str,
    progress: Progress | None = None,
) -> ImportSummary:
    """Insert or update every member of `rows` in one transaction, and audit it.

    A member's tags become exactly those of its row; members not in `rows` stay as they are.
    """
    report = progress or (lambda _step, _done, _total: None)
    async with db.writer() as session:
        bulk = _Bulk(session)
        groups_added, traits_added, trait_ids = await _traits(bulk, rows)
        totals = [0, 0, 0]  # added, updated, unchanged
        for start in range(0, len(rows), BATCH):
            batch = rows[start : start + BATCH]
            counts = await _import_batch(bulk, batch, trait_ids)
            totals = [total + count for total, count in zip(totals, counts, strict=True)]
            report("Importing members", start + len(batch), len(rows))
        await bulk.restore_foreign_keys()
        added, updated, unchanged = totals
        summary = ImportSummary(added, updated, unchanged, groups_added, traits_added)
        await audit.record(
            session,
            marketer_id=None,
            actor=actor,
            action=AuditAction.MEMBERS_IMPORTED,
            detail={"file": source, **asdict(summary)},
        )
        await session.commit()
    return summary


async def _import_batch(
    bulk: _Bulk, batch: Sequence[MemberRow], trait_ids: dict[Tag, int]
) -> tuple[int, int, int]:
    """Write one batch of members; (added, updated, unchanged)."""
    wanted = {row.handle: frozenset(map(trait_ids.__getitem__, row.tags)) for row in batch}
    existing = await bulk.member_ids(list(wanted))
    current = await bulk.tags_of(list(existing.values()))
    changed = {
        member_id: wanted[handle]
        for handle, member_id in existing.items()
        if current.get(member_id, frozenset()) != wanted[handle]
    }
    new = await bulk.add_members([handle for handle in wanted if handle not in existing])
    await bulk.delete_tags(list(changed))
    await bulk.add_tags({**changed, **{member_id: wanted[h] for h, member_id in new.items()}})
    return len(new), len(changed), len(existing) - len(changed)


async def _traits(bulk: _Bulk, rows: Sequence[MemberRow]) -> tuple[int, int, dict[Tag, int]]:
    """Create the missing groups and traits; (groups added, traits added, tag -> trait id)."""
    tags = {tag for row in rows for tag in row.tags}
    group_names = sorted({group for group, _ in tags})
    groups = await bulk.named_ids("trait_groups", group_names)
    missing_groups = [name for name in group_names if name not in groups]
    if missing_groups:
        await bulk.add_named("trait_groups", missing_groups)
        groups = await bulk.named_ids("trait_groups", group_names)
    traits = await bulk.trait_ids(list(groups.values()))
    missing = sorted({(groups[g], t) for g, t in tags if (groups[g], t) not in traits})
    if missing:
        await bulk.add_traits(missing)
        traits = await bulk.trait_ids(list(groups.values()))
    return len(missing_groups), len(missing), {(g, t): traits[(groups[g], t)] for g, t in tags}


class _Bulk:
    """Statements that take a whole batch as one parameter, in the session's SQL dialect."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.postgres = session.get_bind().dialect.name == "postgresql"
        self._dropped_keys: list[tuple[str, str]] | None = None  # None: not tried yet

    def _list(self, name: str, sql_type: str) -> str:
        """A subquery over the list bound as `:name` (a JSON text on SQLite)."""
        if self.postgres:
            return f"SELECT unnest(CAST(:{name} AS {sql_type}[]))"
        return f"SELECT value FROM json_each(:{name})"

    def _bind(self, values: Sequence[Any]) -> Any:
        return list(values) if self.postgres else json.dumps(list(values))

    async def _rows(self, sql: str, **params: Sequence[Any]) -> list[Any]:
        bound = {name: self._bind(values) for name, values in params.items()}
        return list((await self.session.execute(text(sql), bound)).all())

    async def named_ids(self, table: str, names: list[str]) -> dict[str, int]:
        sql = f"SELECT name, id FROM {table} WHERE name IN ({self._list('names', 'TEXT')})"
        return dict(await self._rows(sql, names=names))

    async def add_named(self, table: str, names: list[str]) -> None:
        await self._rows(
            f"INSERT INTO {table} (name) {self._list('names', 'TEXT')} RETURNING id", names=names
        )

    async def trait_ids(self, group_ids: list[int]) -> dict[tuple[int, str], int]:
        sql = (
            "SELECT trait_group_id, name, id FROM traits "
            f"WHERE trait_group_id IN ({self._list('groups', 'BIGINT')})"
        )
        return {(group, name): id_ for group, name, id_ in await self._rows(sql, groups=group_ids)}

    async def add_traits(self, traits: list[tuple[int, str]]) -> None:
        await self._insert_pairs("traits", ("trait_group_id", "name"), ("BIGINT", "TEXT"), traits)

    async def member_ids(self, handles: list[str]) -> dict[str, int]:
        sql = f"SELECT handle, id FROM members WHERE handle IN ({self._list('handles', 'TEXT')})"
        return dict(await self._rows(sql, handles=handles))

    async def add_members(self, handles: list[str]) -> dict[str, int]:
        if not handles:
            return {}
        sql = f"INSERT INTO members (handle) {self._list('handles', 'TEXT')} RETURNING handle, id"
        return dict(await self._rows(sql, handles=handles))

    async def tags_of(self, member_ids: list[int]) -> dict[int, frozenset[int]]:
        """The trait ids of each member that has tags: one row per member, not per tag."""
        if not member_ids:
            return {}
        traits = "array_agg(trait_id)" if self.postgres else "group_concat(trait_id)"
        sql = (
            f"SELECT member_id, {traits} FROM member_tags "
            f"WHERE member_id IN ({self._list('ids', 'BIGINT')}) GROUP BY member_id"
        )
        rows = await self._rows(sql, ids=member_ids)
        if self.postgres:
            return {member_id: frozenset(ids) for member_id, ids in rows}
        return {member_id: frozenset(map(int, ids.split(","))) for member_id, ids in rows}

    async def delete_tags(self, member_ids: list[int]) -> None:
        if member_ids:
            sql = f"DELETE FROM member_tags WHERE member_id IN ({self._list('ids', 'BIGINT')})"
            await self.session.execute(text(sql), {"ids": self._bind(member_ids)})

    async def add_tags(self, tags: dict[int, frozenset[int]]) -> None:
        """Add each member's traits (the member has none of them yet)."""
        pairs = [(member_id, trait) for member_id, traits in tags.items() for trait in traits]
        if self.postgres and len(pairs) >= BULK_CHECK_ROWS and self._dropped_keys is None:
            await self._drop_foreign_keys()
        await self._insert_pairs(
            "member_tags", ("member_id", "trait_id"), ("BIGINT", "BIGINT"), pairs
        )

    async def _drop_foreign_keys(self) -> None:
        """Drop member_tags' foreign keys until `restore_foreign_keys`, in this transaction.

        PostgreSQL checks a foreign key row by row (two lookups per tag); adding it back checks
        every row in one join, 3 times faster for a large load (PostgreSQL's manual, "Populating
        a Database"). It needs the table's owner (who ran `pulse db upgrade`); for anyone else,
        rows are checked one by one. The table is locked until the import commits.
        """
        keys = await self.session.execute(
            text(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = 'member_tags'::regclass AND contype = 'f'"
            )
        )
        self._dropped_keys = [(name, definition) for name, definition in keys]
        try:
            async with self.session.begin_nested():
                for name, _ in self._dropped_keys:
                    await self.session.execute(
                        text(f'ALTER TABLE member_tags DROP CONSTRAINT "{name}"')
                    )
        except DBAPIError as exc:
            log.info("member tags are checked row by row: %s", getattr(exc, "orig", exc))
            self._dropped_keys = []

    async def restore_foreign_keys(self) -> None:
        for name, definition in self._dropped_keys or []:
            await self.session.execute(
                text(f'ALTER TABLE member_tags ADD CONSTRAINT "{name}" {definition}')
            )

    async def _insert_pairs(
        self,
        table: str,
        columns: tuple[str, str],
        sql_types: tuple[str, str],
        pairs: list[tuple[Any, Any]],
    ) -> None:
        if not pairs:
            return
        names = ", ".join(columns)
        if self.postgres:
            sql = (
                f"INSERT INTO {table} ({names}) SELECT * FROM unnest("
                f"CAST(:a AS {sql_types[0]}[]), CAST(:b AS {sql_types[1]}[]))"
            )
            params: dict[str, Any] = {"a": [a for a, _ in pairs], "b": [b for _, b in pairs]}
        else:
            sql = (
                f"INSERT INTO {table} ({names}) "
                "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') "
                "FROM json_each(:pairs)"
            )
            params = {"pairs": json.dumps(pairs)}
        await self.session.execute(text(sql), params)
