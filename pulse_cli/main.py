"""The `pulse` command line: parses the arguments and runs one part of Campaign Pulse."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pydantic import ValidationError

from pulse_cli import accounts_cmd, apikeys_cmd, bootstrap, console, events_cmd, members_cmd
from pulse_cli.admin_db import CommandError
from pulse_cli.datadir import DataDirError
from pulse_cli.embedded_redis import EmbeddedRedisError
from pulse_cli.network import PortInUseError, ensure_port_free, server_url
from pulse_cli.supervisor import SupervisorError
from pulse_core.config import ConfigError, Settings
from pulse_data.migrate import DatabaseNotAnswering, SchemaError, schema_state

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

DESCRIPTION = """\
Campaign Pulse: a live dashboard of advertising campaigns.

Start with `pulse up`: everything on this machine, with demo data and the desktop app.
To run a deployment by hand, use `pulse db upgrade`, `pulse seed --demo`, and any number of
`pulse server` and `pulse worker` sharing PULSE_DATABASE_URL, PULSE_REDIS_URL and
PULSE_SECRET_KEY."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run `pulse` with `argv` (default: the process's arguments); returns the exit code."""
    args = build_parser().parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.command
    try:
        return command(args)
    except ValidationError as exc:
        console.error(describe_validation_error(exc))
        return EXIT_USAGE
    except CommandError as exc:
        console.error(str(exc))
        return EXIT_USAGE
    except SchemaError as exc:
        console.error(_with_default_database_hint(str(exc)))
        return EXIT_USAGE
    except ConfigError as exc:
        console.error(str(exc))
        return EXIT_USAGE
    except (
        DataDirError,
        PortInUseError,
        EmbeddedRedisError,
        bootstrap.DatabaseSetupError,
        DatabaseNotAnswering,
        events_cmd.RedisUnavailable,
        SupervisorError,
    ) as exc:
        console.error(str(exc))
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    options = common.add_argument_group("common options")
    # SUPPRESS: an option left out does not override its PULSE_* environment variable.
    options.add_argument(
        "--host", default=argparse.SUPPRESS, help="server address (PULSE_HOST; 127.0.0.1)"
    )
    options.add_argument(
        "--port", type=int, default=argparse.SUPPRESS, help="server port (PULSE_PORT; 8765)"
    )
    options.add_argument(
        "--data-dir",
        default=argparse.SUPPRESS,
        metavar="DIR",
        help="where `pulse up` keeps its database, secret key and Redis files (PULSE_DATA_DIR)",
    )

    parser = argparse.ArgumentParser(
        prog="pulse",
        description=DESCRIPTION,
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def add(name: str, run: Callable[[argparse.Namespace], int], text: str) -> Any:
        sub = commands.add_parser(name, parents=[common], help=text, description=text)
        sub.set_defaults(command=run)
        return sub

    up = add("up", _up, "run everything on this machine: Redis, database, server, worker, desktop")
    up.add_argument("--headless", action="store_true", help="without the desktop app")
    _add_demo_members(up)

    add(
        "server",
        _server,
        "run the API and WebSocket server (needs PULSE_REDIS_URL, PULSE_SECRET_KEY)",
    )
    add("worker", _worker, "run an arq worker (needs PULSE_REDIS_URL, PULSE_SECRET_KEY)")

    desktop = add("desktop", _desktop, "run the desktop app against a running server")
    desktop.add_argument(
        "--server",
        metavar="URL",
        default=os.environ.get("PULSE_SERVER_URL"),
        help="server URL (PULSE_SERVER_URL; default from --host and --port)",
    )
    desktop.add_argument(
        "--email",
        metavar="E",
        default=os.environ.get("PULSE_EMAIL"),
        help="fills the login (PULSE_EMAIL)",
    )
    desktop.epilog = "With PULSE_PASSWORD set as well, the app logs in without asking."

    db = commands.add_parser("db", help="database administration", parents=[common])
    db_commands = db.add_subparsers(title="commands", metavar="COMMAND", required=True)
    upgrade = db_commands.add_parser(
        "upgrade", parents=[common], help="apply the database migrations"
    )
    upgrade.set_defaults(command=_db_upgrade)
    current = db_commands.add_parser(
        "current",
        parents=[common],
        help="print the schema revision and whether it is the latest",
    )
    current.set_defaults(command=_db_current)

    seed = add("seed", _seed, "load data into the database")
    seed.add_argument("--demo", action="store_true", required=True, help="the demo data")
    _add_demo_members(seed)

    for module in (accounts_cmd, apikeys_cmd, members_cmd, events_cmd):
        module.register(commands, common)
    return parser


def _add_demo_members(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--demo-members",
        type=int,
        default=os.environ.get("PULSE_DEMO_MEMBERS", str(bootstrap.DEFAULT_DEMO_MEMBERS)),
        help=argparse.SUPPRESS,  # for tests: a smaller demo data set (PULSE_DEMO_MEMBERS)
    )


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    overrides = {k: getattr(args, k) for k in ("host", "port", "data_dir") if hasattr(args, k)}
    return Settings(**overrides, **extra)


def _database_settings(args: argparse.Namespace) -> Settings:
    # Migrating and seeding sign nothing, so they need no PULSE_SECRET_KEY: demo=True only
    # lifts that check on this in-process object.
    return _settings(args, demo=True)


def _up(args: argparse.Namespace) -> int:
    from pulse_cli.supervisor import run_up

    settings = _settings(args, demo=True)
    return run_up(settings, headless=args.headless, demo_members=args.demo_members)


def _server(args: argparse.Namespace) -> int:
    settings = _settings(args)
    settings.require_redis_url()
    ensure_port_free(settings.host, settings.port)
    from server.main import run_server

    run_server(settings)
    return 0


def _worker(args: argparse.Namespace) -> int:
    settings = _settings(args)
    settings.require_redis_url()
    from workers.main import run_worker

    run_worker(settings)
    return 0


def _desktop(args: argparse.Namespace) -> int:
    url = args.server or server_url(
        getattr(args, "host", None) or os.environ.get("PULSE_HOST", "127.0.0.1"),
        getattr(args, "port", None) or int(os.environ.get("PULSE_PORT", "8765")),
    )
    try:
        from desktop.main import run_desktop

        code: int = run_desktop(url, args.email, os.environ.get("PULSE_PASSWORD"))
    except ImportError as exc:
        console.error(
            f"the desktop app cannot start: {exc}. Reinstall with `pip install -e .`; on Linux "
            "Qt also needs a display and the system's X11/EGL libraries."
        )
        return EXIT_FAILURE
    return code


def _db_upgrade(args: argparse.Namespace) -> int:
    url = _database_settings(args).effective_database_url
    bootstrap.upgrade(url)
    console.info(f"the database {bootstrap.display_url(url)} is up to date")
    return 0


def _db_current(args: argparse.Namespace) -> int:
    url = _database_settings(args).effective_database_url
    console.out.print(schema_state(url).summary(), markup=False)
    return 0


def _with_default_database_hint(message: str) -> str:
    if os.environ.get("PULSE_DATABASE_URL"):
        return message
    return (
        f"{message}; PULSE_DATABASE_URL is not set, so this is the SQLite file of the data "
        "directory"
    )


def _seed(args: argparse.Namespace) -> int:
    url = _database_settings(args).effective_database_url
    if bootstrap.seed_demo(url, args.demo_members):
        console.info(f"demo data loaded into {bootstrap.display_url(url)}")
    else:
        console.info("the demo data is already there; nothing to do")
    return 0


def describe_validation_error(exc: ValidationError) -> str:
    """One line per invalid setting, naming its PULSE_* variable."""
    lines = []
    for error in exc.errors():
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, ConfigError):
            lines.append(str(cause))
        else:
            names = ", ".join(f"PULSE_{str(part).upper()}" for part in error["loc"])
            lines.append(f"{names or 'settings'}: {error['msg']}")
    return "; ".join(lines)


def _version() -> str:
    try:
        return version("campaign-pulse")
    except PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
