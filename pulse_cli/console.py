"""Where the `pulse` command talks to its user: results on stdout, news and errors on stderr."""

from __future__ import annotations

from rich.console import Console

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def info(message: str) -> None:
    """A line of news from the supervisor."""
    err.print(f"pulse: {message}", markup=False)


def warn(message: str) -> None:
    err.print(f"pulse: {message}", style="yellow", markup=False)


def error(message: str) -> None:
    """One line that says what went wrong and what to do next."""
    err.print(f"pulse: error: {message}", style="bold red", markup=False)
