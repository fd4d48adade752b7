"""`pulse members import FILE.csv`: members and their tags, all or nothing, with a progress bar."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from rich.progress import Progress

from pulse_cli import bootstrap, console
from pulse_cli.admin_db import CommandError, database_url, with_database
from pulse_data.audit import command_line_actor
from pulse_data.database import Database
from pulse_data.members import (
    ImportSummary,
    MemberFileError,
    MemberRow,
    import_members,
    read_members,
)
from pulse_data.migrate import require_latest_schema

FILE_HELP = """\
A CSV file with the header `handle,tags`; `tags` is `Group:Trait` pairs separated by `;`, e.g.
  handle,tags
  m-0001,Region:North;Interest:Hiking
Missing trait groups and traits are created; a member's tags become exactly the file's. A bad
line stops the import with its number, and nothing of the file is kept."""


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `pulse members import` to `pulse`."""
    members = commands.add_parser("members", parents=[common], help="the members targets match")
    member_commands = members.add_subparsers(title="commands", metavar="COMMAND", required=True)
    text = "insert or update members and their tags from a CSV file"
    load = member_commands.add_parser(
        "import",
        parents=[common],
        help=text,
        description=f"{text}.\n\n{FILE_HELP}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    load.add_argument("file", metavar="FILE.csv", type=Path)
    load.set_defaults(command=_import)


def _import(args: argparse.Namespace) -> int:
    path: Path = args.file
    url = database_url(args)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        require_latest_schema(url)
        summary = _import_file(args, path, handle)
    console.out.print(_describe(summary), markup=False)
    return 0


def _import_file(args: argparse.Namespace, path: Path, handle: BinaryIO) -> ImportSummary:
    with bootstrap.progress_bar() as progress:
        rows = _read(path, handle, progress)
        task = progress.add_task("Importing members", total=len(rows))

        def report(step: str, done: int, total: int) -> None:
            progress.update(task, description=step, completed=done, total=total)

        async def work(db: Database) -> ImportSummary:
            return await import_members(
                db, rows, actor=command_line_actor(), source=path.name, progress=report
            )

        try:
            return with_database(args, work)
        except bootstrap.DATABASE_ERRORS as exc:
            raise bootstrap.database_error("import members into", database_url(args), exc) from exc


def _read(path: Path, handle: BinaryIO, progress: Progress) -> list[MemberRow]:
    task = progress.add_task(f"Reading {path.name}", total=os.fstat(handle.fileno()).st_size)
    try:
        return list(read_members(_counted(handle, progress, task)))
    except MemberFileError as exc:
        progress.update(task, visible=False)
        raise CommandError(f"{path}: {exc}; nothing was imported") from None
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None


def _counted(lines: Iterable[bytes], progress: Progress, task: Any) -> Iterator[bytes]:
    """The lines, advancing the bar by their bytes every few thousand lines."""
    pending = 0
    for number, line in enumerate(lines):
        pending += len(line)
        if number % 5000 == 0:
            progress.advance(task, pending)
            pending = 0
        yield line
    progress.advance(task, pending)


def _describe(summary: ImportSummary) -> str:
    return (
        f"members: {summary.members_added:,} added, {summary.members_updated:,} updated, "
        f"{summary.members_unchanged:,} unchanged; added {summary.trait_groups_added:,} trait "
        f"groups and {summary.traits_added:,} traits"
    )
