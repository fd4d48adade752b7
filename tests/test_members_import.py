"""`pulse members import FILE.csv` as an admin runs it: by handle, all or nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, text

from pulse_data.database import Database
from pulse_data.members import MemberFileError, read_members
from pulse_data.models import AuditEntry, Member, MemberTag, Trait, TraitGroup
from tests.test_cli import clean_env, run_pulse

Snapshot = tuple[dict[str, set[str]], dict[str, int], set[str], int]


async def snapshot(db: Database) -> Snapshot:
    """(handle -> {"Group:Trait"}, handle -> member id, trait groups, audit entries)."""
    async with db.reader() as session:
        members = dict((await session.execute(select(Member.handle, Member.id))).all())
        rows = await session.execute(
            select(Member.handle, TraitGroup.name, Trait.name)
            .join(MemberTag, MemberTag.member_id == Member.id)
            .join(Trait, Trait.id == MemberTag.trait_id)
            .join(TraitGroup, TraitGroup.id == Trait.trait_group_id)
        )
        tags: dict[str, set[str]] = {handle: set() for handle in members}
        for handle, group, trait in rows:
            tags[handle].add(f"{group}:{trait}")
        groups = set((await session.scalars(select(TraitGroup.name))).all())
        audits = len((await session.scalars(select(AuditEntry.id))).all())
    return tags, members, groups, audits


def import_file(db: Database, path: Path, content: str | bytes) -> tuple[int, str, str]:
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    result = run_pulse("members", "import", str(path), env=clean_env(PULSE_DATABASE_URL=db.url))
    return result.returncode, result.stdout, result.stderr


FIRST = """\
handle,tags
m-1,Region:North;Interest:Hiking
m-2,"Region:West; Interest:Hiking; Interest:Skiing"
m-3,
"""
CHANGED = """\
handle,tags
m-1,Region:North;Interest:Hiking
m-2,Region:West;Interest:Skiing
m-3,
m-4,Age:18-34
"""


async def test_import_adds_then_changes_nothing_then_updates_only_what_changed(
    db: Database, tmp_path: Path
) -> None:
    csv = tmp_path / "members.csv"

    first = import_file(db, csv, FIRST)
    after_first = await snapshot(db)
    again = import_file(db, csv, FIRST)
    after_again = await snapshot(db)
    changed = import_file(db, csv, CHANGED)
    after_changed = await snapshot(db)

    assert first[0] == 0, first[2]
    assert first[1].strip() == (
        "members: 3 added, 0 updated, 0 unchanged; added 2 trait groups and 4 traits"
    )
    assert "Importing members" in first[2] and "100%" in first[2]  # the progress bar
    tags, ids, groups, audits = after_first
    assert tags == {
        "m-1": {"Region:North", "Interest:Hiking"},
        "m-2": {"Region:West", "Interest:Hiking", "Interest:Skiing"},
        "m-3": set(),
    }
    assert groups == {"Region", "Interest"}
    assert audits == 1

    assert again[0] == 0, again[2]
    assert "0 added, 0 updated, 3 unchanged; added 0 trait groups and 0 traits" in again[1]
    assert after_again[:3] == after_first[:3]

    assert changed[0] == 0, changed[2]
    assert "1 added, 1 updated, 2 unchanged; added 1 trait groups and 1 traits" in changed[1]
    tags, new_ids, groups, audits = after_changed
    assert tags["m-2"] == {"Region:West", "Interest:Skiing"}
    assert tags["m-4"] == {"Age:18-34"}
    assert {h: new_ids[h] for h in ids} == ids  # updated in place, by handle
    assert audits == 3
    async with db.reader() as session:
        entry = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()))).first()
    assert entry is not None
    assert (entry.action, entry.marketer_id, entry.actor_kind) == (
        "members_imported",
        None,
        "system",
    )
    assert '"members_updated": 1' in entry.detail and "members.csv" in entry.detail


async def test_a_bad_line_exits_2_naming_it_and_keeps_nothing(db: Database, tmp_path: Path) -> None:
    import_file(db, tmp_path / "before.csv", FIRST)
    before = await snapshot(db)
    rows = [f"new-{n},Shoe size:{n};Region:South" for n in range(14)]
    content = "\n".join(["handle,tags", "m-1,Region:East", *rows, "m-99,Region", ""])

    code, stdout, stderr = import_file(db, tmp_path / "bad.csv", content)

    assert code == 2
    assert "line 17: the tag 'Region' is not `Group:Trait`" in stderr
    assert "nothing was imported" in stderr
    assert "Traceback" not in stderr and stdout == ""
    assert await snapshot(db) == before


async def test_a_large_import_keeps_every_tag_and_the_foreign_keys(
    db: Database, tmp_path: Path
) -> None:
    """10,000 tags in one batch: PostgreSQL checks the foreign keys once, at the end."""
    traits = [f"Interest:Topic {n}" for n in range(40)]
    lines = [f"big-{n},{';'.join(traits[n % 37 : n % 37 + 4])}" for n in range(2_500)]

    code, stdout, stderr = import_file(db, tmp_path / "big.csv", "\n".join(["handle,tags", *lines]))

    assert code == 0, stderr
    assert "2,500 added" in stdout
    tags, _, _, _ = await snapshot(db)
    assert sum(len(member_tags) for member_tags in tags.values()) == 10_000
    assert tags["big-38"] == {f"Interest:Topic {n}" for n in range(1, 5)}
    if not db.is_sqlite:
        async with db.reader() as session:
            keys = await session.scalars(
                text(
                    "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid = 'member_tags'::regclass AND contype = 'f' ORDER BY 1"
                )
            )
            assert keys.all() == [
                "FOREIGN KEY (member_id) REFERENCES members(id)",
                "FOREIGN KEY (trait_id) REFERENCES traits(id)",
            ]


BAD_FILES = [
    ("handle;tags\nm-1,A:B\n", 1, "the first line must be the header `handle,tags`"),
    ("", 1, "the first line must be the header"),
    ("handle,tags\nm-1,A:B\n,A:B\n", 3, "the handle is missing"),
    (f"handle,tags\n{'h' * 101},A:B\n", 2, "the handle is longer than 100 characters"),
    ("handle,tags\nm-1,A:B;Region\n", 2, "the tag 'Region' is not `Group:Trait`"),
    ("handle,tags\nm-1,:B\n", 2, "the tag ':B' needs a group and a trait"),
    ("handle,tags\nm-1,A: \n", 2, "the tag 'A:' needs a group and a trait"),
    ("handle,tags\nm-1,A:B\nm-2,\nm-1,A:C\n", 4, "the handle 'm-1' is already on line 2"),
    ("handle,tags\nm-1,A:B,extra\n", 2, "expected 2 fields (handle,tags), found 3"),
    (b"handle,tags\nm-1,A:B\nm-\xe9,A:B\n", 3, "not UTF-8 text"),
    ('handle,tags\nm-1,A:B\nm-2,"A:C\nm-3,A:D\n', 3, "not valid CSV (unexpected end of data)"),
]


@pytest.mark.parametrize(("content", "line", "problem"), BAD_FILES)
def test_every_kind_of_bad_line_is_named(content: str | bytes, line: int, problem: str) -> None:
    raw = content.encode() if isinstance(content, str) else content
    with pytest.raises(MemberFileError) as error:
        list(read_members(raw.splitlines(keepends=True)))

    assert str(error.value).startswith(f"line {line}: {problem}")


def test_quoted_fields_blank_lines_and_a_byte_order_mark_are_fine() -> None:
    raw = b'\xef\xbb\xbfHandle , Tags\r\n\r\n"m,1","A:B;A:B;  C : D ;"\r\nm-2,A:Time:10:30\r\n'

    rows = list(read_members(raw.splitlines(keepends=True)))

    assert [(r.line, r.handle, set(r.tags)) for r in rows] == [
        (3, "m,1", {("A", "B"), ("C", "D")}),
        (4, "m-2", {("A", "Time:10:30")}),
    ]
