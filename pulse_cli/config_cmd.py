"""`pulse config check`: are the settings of `pulse server` and `pulse worker` ready to run?

Reads the `PULSE_*` settings as those commands do and prints one line per check, `ok` or
`problem`, without starting anything; exits 2 when any check found a problem.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from pulse_cli import console
from pulse_core.config import ConfigError, Settings

EXIT_PROBLEM = 2
CHECK_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, and None or what is wrong with it."""

    name: str
    detail: str
    problem: str | None = None

    def line(self) -> str:
        status = "ok" if self.problem is None else "problem"
        return f"{self.name:<11}{status:<9}{self.problem or self.detail}"


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `pulse config check` to `pulse`."""
    config = commands.add_parser("config", parents=[common], help="the deployment's settings")
    config_commands = config.add_subparsers(title="commands", metavar="COMMAND", required=True)
    check = config_commands.add_parser(
        "check",
        parents=[common],
        help="check the settings as `pulse server` and `pulse worker` read them",
        description="Check the settings as `pulse server` and `pulse worker` read them: the "
        "secret key, the database and its schema, Redis and the email settings. One line per "
        "check; exits 2 when any has a problem.",
    )
    check.set_defaults(command=_check)


def _check(args: argparse.Namespace) -> int:
    overrides = {k: getattr(args, k) for k in ("host", "port", "data_dir") if hasattr(args, k)}
    checks = list(run_checks(overrides))
    for check in checks:
        console.out.print(check.line(), markup=False)
    return EXIT_PROBLEM if any(c.problem for c in checks) else 0


def run_checks(overrides: dict[str, Any]) -> Iterator[Check]:
    """Every check, in the order a server meets them at start-up."""
    try:
        # demo=True lifts only the secret key's rule, which has a line of its own below.
        settings = Settings(**overrides, demo=True)
    except (ValidationError, ConfigError) as exc:
        yield Check("settings", "", _describe(exc))
        return
    yield Check("settings", "every PULSE_* variable parses")
    yield _secret_key(overrides)
    yield _guarded("database", lambda: _database(settings))
    yield _guarded("redis", lambda: _redis(settings))
    yield _email(settings)


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        from pulse_cli.main import describe_validation_error

        return describe_validation_error(exc)
    return str(exc)


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    try:
        return check()
    except Exception as exc:  # a check that fails in an unforeseen way is still one line
        return Check(name, "", f"{type(exc).__name__}: {exc}".splitlines()[0])


def _secret_key(overrides: dict[str, Any]) -> Check:
    try:
        settings = Settings(**overrides)  # exactly as `pulse server` reads it
        settings.require_secret_key()
    except (ValidationError, ConfigError) as exc:
        return Check("secret key", "", _describe(exc))
    if settings.demo:
        return Check(
            "secret key",
            "",
            "PULSE_DEMO is on: any secret key is accepted and the workers send made-up ad "
            "traffic; unset PULSE_DEMO outside a demo",
        )
    return Check("secret key", "PULSE_SECRET_KEY is set, long enough and not a known default")


def _database(settings: Settings) -> Check:
    from pulse_data.migrate import DatabaseNotAnswering, display_url, schema_state_async

    url = settings.effective_database_url
    try:
        state = asyncio.run(asyncio.wait_for(schema_state_async(url), CHECK_TIMEOUT_SECONDS))
    except DatabaseNotAnswering as exc:
        return Check("database", "", str(exc))
    except TimeoutError:
        return Check(
            "database",
            "",
            f"the database {display_url(url)} gave no answer within "
            f"{CHECK_TIMEOUT_SECONDS:.0f} s: check PULSE_DATABASE_URL",
        )
    where = display_url(url)
    problem = state.problem()
    if problem is not None:
        return Check("database", "", f"{problem} (database: {where})")
    return Check("database", f"{where} answers; schema {state.summary()}")


def _redis(settings: Settings) -> Check:
    if not settings.redis_url:
        return Check(
            "redis", "", "PULSE_REDIS_URL is not set (for example redis://127.0.0.1:6379/0)"
        )
    import redis

    where = _without_password(settings.redis_url)
    client = redis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
        socket_timeout=CHECK_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        return Check("redis", "", f"Redis at {where} is not answering: {exc}")
    finally:
        client.close()
    return Check("redis", f"{where} answers")


def _email(settings: Settings) -> Check:
    # The settings themselves refuse an SMTP URL that does not parse, or one without a From.
    if settings.smtp_url is not None:
        parts = urlsplit(settings.smtp_url.get_secret_value())
        where = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return Check("email", f"sent through {where} as {settings.mail_from} (not tried)")
    if settings.mail_dir is not None:
        return Check("email", f"written as .eml files into {settings.mail_dir}")
    return Check("email", "PULSE_SMTP_URL is not set: nobody is emailed")


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
