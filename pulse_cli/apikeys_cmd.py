"""`pulse apikey ...`: the ingestion keys that ad servers send their events with."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from rich.console import Console
from rich.table import Table
from rich.text import Text

from pulse_cli import console
from pulse_cli.admin_db import CommandError, run_on_database
from pulse_data import apikeys
from pulse_data.apikeys import ApiKeyError
from pulse_data.audit import command_line_actor
from pulse_data.database import Database

T = TypeVar("T")


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `pulse apikey create|list|revoke` to `pulse`."""
    apikey = commands.add_parser(
        "apikey", parents=[common], help="ingestion keys for the ad servers of a marketer"
    )
    apikey_commands = apikey.add_subparsers(title="commands", metavar="COMMAND", required=True)
    create = apikey_commands.add_parser(
        "create",
        parents=[common],
        help="make a key for a marketer and print it (once: only its hash is kept)",
    )
    create.add_argument("--marketer", required=True, metavar="ID", help="the marketer's id")
    create.add_argument("--name", required=True, help="what the key is for, e.g. the ad server")
    create.set_defaults(command=_create)
    listing = apikey_commands.add_parser(
        "list",
        parents=[common],
        help="a table of keys: id, marketer, name, prefix, created, revoked",
    )
    listing.set_defaults(command=_list)
    revoke = apikey_commands.add_parser(
        "revoke", parents=[common], help="end a key: it answers 401 from now on"
    )
    revoke.add_argument("id", metavar="ID", help="the key's id (see `pulse apikey list`)")
    revoke.set_defaults(command=_revoke)


def _create(args: argparse.Namespace) -> int:
    marketer_id = _positive_id(args.marketer, "--marketer", "a marketer id")
    created = _run(
        args, lambda db: apikeys.create_key(db, marketer_id, args.name, command_line_actor())
    )
    # The key alone on stdout, so that `KEY=$(pulse apikey create ...)` takes it.
    console.out.print(created.key, markup=False)
    console.info(
        f"key {created.view.id} ({created.view.prefix}...) for {created.view.marketer_name}: "
        "keep it now, it cannot be shown again"
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    table = Table("id", "marketer", "name", "prefix", "created", "revoked")
    for key in _run(args, apikeys.list_keys):
        table.add_row(
            *(
                Text(str(value))  # Text: no markup in names
                for value in (
                    key.id,
                    f"{key.marketer_name} ({key.marketer_id})",
                    key.name,
                    key.prefix,
                    _when(key.created_at),
                    _when(key.revoked_at) if key.revoked_at else "no",
                )
            )
        )
    _print_table(table)
    return 0


def _revoke(args: argparse.Namespace) -> int:
    key_id = _positive_id(args.id, "ID", "a key id")
    view, revoked = _run(args, lambda db: apikeys.revoke_key(db, key_id, command_line_actor()))
    if revoked:
        console.info(f"key {view.id} ({view.name}) is revoked: it answers 401 from now on")
    else:
        console.info(f"key {view.id} ({view.name}) was already revoked on {_when(view.revoked_at)}")
    return 0


def _run(args: argparse.Namespace, work: Callable[[Database], Awaitable[T]]) -> T:
    return run_on_database(args, work, (ApiKeyError,))


def _positive_id(value: str, option: str, what: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 0 < number <= apikeys.MAX_ID:
        raise CommandError(f"{option}: {value!r} is not {what}")
    return number


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def _print_table(table: Table) -> None:
    """The table on stdout; never cut to 80 columns when stdout is a file or a pipe."""
    if console.out.is_terminal:
        console.out.print(table)
        return
    wide = console.out.options.update_width(10_000)
    width = max(80, console.out.measure(table, options=wide).maximum)
    Console(width=width, highlight=False).print(table)
