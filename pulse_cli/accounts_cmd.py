"""`pulse marketer ...` and `pulse user ...`: marketers, users, passwords, disabling."""

from __future__ import annotations

import argparse
import getpass
import os
import warnings
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from rich.console import Console
from rich.table import Table
from rich.text import Text

from pulse_cli import console
from pulse_cli.admin_db import CommandError, run_on_database
from pulse_data import users
from pulse_data.audit import command_line_actor
from pulse_data.database import Database
from pulse_data.users import AccountError, UserChange

T = TypeVar("T")
PASSWORD_VARIABLE = "PULSE_PASSWORD"


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `pulse marketer` and `pulse user` to `pulse`."""
    marketer = commands.add_parser("marketer", parents=[common], help="marketers (companies)")
    marketer_commands = marketer.add_subparsers(title="commands", metavar="COMMAND", required=True)
    add = marketer_commands.add_parser(
        "add", parents=[common], help="create a marketer and print its id"
    )
    add.add_argument("name", metavar="NAME")
    add.set_defaults(command=_marketer_add)
    listing = marketer_commands.add_parser(
        "list", parents=[common], help="a table of marketers: id, name, users, campaigns"
    )
    listing.set_defaults(command=_marketer_list)

    user = commands.add_parser("user", parents=[common], help="users of the marketers")
    user_commands = user.add_subparsers(title="commands", metavar="COMMAND", required=True)
    password_note = (
        f"The password comes from {PASSWORD_VARIABLE}, or is asked twice without echo; "
        f"at least {users.MIN_PASSWORD_LENGTH} characters."
    )
    add = user_commands.add_parser(
        "add", parents=[common], help="create a user and print its id", epilog=password_note
    )
    add.add_argument("email", metavar="EMAIL")
    add.add_argument("--marketer", required=True, metavar="ID", help="the marketer's id")
    add.add_argument("--role", required=True, metavar="ROLE", help="admin, manager or viewer")
    add.add_argument("--name", default="", help="the user's name, as others see it")
    add.set_defaults(command=_user_add)
    passwd = user_commands.add_parser(
        "passwd",
        parents=[common],
        help="set a new password; the user's sessions end",
        epilog=password_note,
    )
    passwd.add_argument("email", metavar="EMAIL")
    passwd.set_defaults(command=_user_passwd)
    disable = user_commands.add_parser(
        "disable", parents=[common], help="the user cannot log in; their sessions end at once"
    )
    disable.add_argument("email", metavar="EMAIL")
    disable.set_defaults(command=_user_disable)
    enable = user_commands.add_parser("enable", parents=[common], help="the user may log in again")
    enable.add_argument("email", metavar="EMAIL")
    enable.set_defaults(command=_user_enable)
    listing = user_commands.add_parser(
        "list", parents=[common], help="a table of users: id, email, name, marketer, role"
    )
    listing.add_argument("--marketer", metavar="ID", help="only this marketer's users")
    listing.set_defaults(command=_user_list)


def _marketer_add(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        async with db.writer() as session:
            marketer_id = await users.create_marketer(
                session, args.name, actor=command_line_actor()
            )
            await session.commit()
        return marketer_id

    console.out.print(str(_run(args, work)), markup=False)
    return 0


def _marketer_list(args: argparse.Namespace) -> int:
    async def work(db: Database) -> list[users.MarketerSummary]:
        async with db.reader() as session:
            return await users.list_marketers(session)

    table = Table("id", "name", "users", "campaigns")
    for row in _run(args, work):
        _add_row(table, row.id, row.name, row.users, row.campaigns)
    _print_table(table)
    return 0


def _user_add(args: argparse.Namespace) -> int:
    marketer_id = _marketer_id(args.marketer)
    role = _checked(lambda: users.parse_role(args.role))
    email = _checked(lambda: users.normalize_email(args.email))

    async def check(db: Database) -> None:
        async with db.reader() as session:
            if not await users.marketer_exists(session, marketer_id):
                raise users.MarketerNotFound(
                    f"--marketer: no marketer with id {marketer_id} (see `pulse marketer list`)"
                )
            if await users.email_in_use(session, email):
                raise users.EmailTaken(f"email: {email} is already taken")

    _run(args, check)  # before asking for a password that could not be used
    password = _read_password()

    async def work(db: Database) -> int:
        hashed = await users.new_password(password)
        async with db.writer() as session:
            user = await users.create_user(
                session,
                marketer_id=marketer_id,
                email=email,
                name=args.name,
                role=role,
                password=hashed,
                actor=command_line_actor(),
            )
            await session.commit()
        return user.id

    console.out.print(str(_run(args, work)), markup=False)
    return 0


def _user_passwd(args: argparse.Namespace) -> int:
    async def check(db: Database) -> None:
        async with db.reader() as session:
            await users.user_id_of_email(session, args.email)

    _run(args, check)
    password = _read_password()

    async def work(db: Database) -> users.UserView:
        hashed = await users.new_password(password)
        return await _change(db, args.email, UserChange(password=hashed))

    user = _run(args, work)
    console.info(f"new password set for {user.email}; their sessions have ended")
    return 0


def _user_disable(args: argparse.Namespace) -> int:
    user = _run(args, lambda db: _change(db, args.email, UserChange(disabled=True)))
    console.info(f"{user.email} is disabled; their sessions have ended")
    return 0


def _user_enable(args: argparse.Namespace) -> int:
    user = _run(args, lambda db: _change(db, args.email, UserChange(disabled=False)))
    console.info(f"{user.email} may log in again")
    return 0


def _user_list(args: argparse.Namespace) -> int:
    marketer_id = None if args.marketer is None else _marketer_id(args.marketer)

    async def work(db: Database) -> list[users.UserView]:
        async with db.reader() as session:
            if marketer_id is not None and not await users.marketer_exists(session, marketer_id):
                raise users.MarketerNotFound(f"--marketer: no marketer with id {marketer_id}")
            return await users.list_users(session, marketer_id)

    table = Table("id", "email", "name", "marketer", "role", "disabled")
    for user in _run(args, work):
        _add_row(
            table,
            user.id,
            user.email,
            user.name,
            f"{user.marketer_name} ({user.marketer_id})",
            user.role.value,
            "yes" if user.disabled else "no",
        )
    _print_table(table)
    return 0


async def _change(db: Database, email: str, change: UserChange) -> users.UserView:
    async with db.writer() as session:
        user_id = await users.user_id_of_email(session, email)
        user = await users.change_user(session, user_id, change, actor=command_line_actor())
        await session.commit()
    return user


def _run(args: argparse.Namespace, work: Callable[[Database], Awaitable[T]]) -> T:
    return run_on_database(args, work, (AccountError,))


def _checked(parse: Callable[[], T]) -> T:
    try:
        return parse()
    except AccountError as exc:
        raise CommandError(str(exc)) from None


def _marketer_id(value: str) -> int:
    try:
        marketer_id = int(value)
    except ValueError:
        marketer_id = 0
    if marketer_id <= 0:
        raise CommandError(
            f"--marketer: {value!r} is not a marketer id (see `pulse marketer list`)"
        )
    return marketer_id


def _read_password() -> str:
    """The new password: PULSE_PASSWORD, or typed twice without echo."""
    password = os.environ.get(PASSWORD_VARIABLE)
    if password is not None:
        return password
    try:
        with warnings.catch_warnings():
            # No terminal to turn echo off on: refuse rather than show the password.
            warnings.simplefilter("error", getpass.GetPassWarning)
            first = getpass.getpass("New password: ")
            second = getpass.getpass("The same again: ")
    except (EOFError, getpass.GetPassWarning):
        raise CommandError(
            f"no password given: set {PASSWORD_VARIABLE}, or run this in a terminal to type it"
        ) from None
    if first != second:
        raise CommandError("the two passwords differ: run the command again")
    return first


def _add_row(table: Table, *values: object) -> None:
    table.add_row(*(Text(str(value)) for value in values))  # Text: no markup in names


def _print_table(table: Table) -> None:
    """The table on stdout; never cut to 80 columns when stdout is a file or a pipe."""
    if console.out.is_terminal:
        console.out.print(table)
        return
    wide = console.out.options.update_width(10_000)
    width = max(80, console.out.measure(table, options=wide).maximum)
    Console(width=width, highlight=False).print(table)
