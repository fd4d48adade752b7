"""Entry point of the desktop app, called by `pulse desktop` and `pulse up`."""

from __future__ import annotations

import logging
import os
import platform
import sys

from pulse_core import version as app_version


def run_desktop(
    server_url: str | None, email: str | None, password: str | None, *, check: bool = False
) -> int:
    """Run the app; with a password (e.g. from PULSE_PASSWORD) it signs in without asking."""
    from desktop.logs import setup_logging
    from desktop.ui.app import run_app  # Qt loads only when the desktop actually runs

    path = setup_logging()
    logging.getLogger("desktop").info(
        "Campaign Pulse %s starting (Python %s, %s); log file %s",
        app_version(),
        platform.python_version(),
        platform.platform(),
        path,
    )
    return run_app(server_url, email, password, check=check)


def main(argv: list[str] | None = None) -> int:
    """`python -m desktop [--server URL] [--email E]`; the password comes from PULSE_PASSWORD."""
    import argparse

    parser = argparse.ArgumentParser(prog="campaign-pulse", description="Campaign Pulse desktop")
    parser.add_argument("--server", default=os.environ.get("PULSE_SERVER_URL"))
    parser.add_argument("--email", default=os.environ.get("PULSE_EMAIL"))
    parser.add_argument(
        "--check",
        action="store_true",
        help="start, print the first window's title and quit (a smoke test)",
    )
    args = parser.parse_args(argv)
    password = os.environ.get("PULSE_PASSWORD")
    return run_desktop(args.server, args.email, password, check=args.check)


if __name__ == "__main__":
    sys.exit(main())
