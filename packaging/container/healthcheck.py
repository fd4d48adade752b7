"""The image's health check: a `pulse server` answers GET /healthz; other commands pass.

Readiness (database, schema, Redis) is /readyz, for the load balancer: a server whose Redis is
away is still healthy, and restarting it would not bring Redis back.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

ANY_ADDRESS = {"", "0.0.0.0", "::", "[::]"}


def command_line() -> list[str]:
    """The arguments of the container's first process: `pulse server ...` for a server."""
    try:
        return Path("/proc/1/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def option(arguments: list[str], name: str) -> str | None:
    for n, argument in enumerate(arguments):
        if argument == name and n + 1 < len(arguments):
            return arguments[n + 1]
        if argument.startswith(f"{name}="):
            return argument.split("=", 1)[1]
    return None


def main() -> int:
    arguments = command_line()
    if "server" not in arguments:
        return 0
    host = option(arguments, "--host") or os.environ.get("PULSE_HOST", "")
    port = option(arguments, "--port") or os.environ.get("PULSE_PORT", "8765")
    host = "127.0.0.1" if host in ANY_ADDRESS else host
    url = f"http://{host}:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except OSError as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
