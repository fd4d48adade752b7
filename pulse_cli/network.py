"""The server's address as a client sees it, a free-port check and the readiness probe."""

from __future__ import annotations

import errno
import socket

import httpx

PROBE_TIMEOUT_SECONDS = 2.0


class PortInUseError(RuntimeError):
    """Another process listens on the port the server needs."""


def server_url(host: str, port: int) -> str:
    """The URL a local client uses to reach a server bound to `host`."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def ensure_port_free(host: str, port: int) -> None:
    """Raise PortInUseError with a clear message when `host:port` cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # The same option uvicorn sets: a socket lingering in TIME_WAIT does not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    f"port {port} on {host} is already in use (is another Campaign Pulse "
                    "running?). Stop that program, or choose another port with --port N "
                    "or PULSE_PORT."
                ) from exc
            raise PortInUseError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


def is_ready(url: str) -> bool:
    """True when the server at `url` answers `/readyz` with 200."""
    try:
        response = httpx.get(f"{url}/readyz", timeout=PROBE_TIMEOUT_SECONDS)
    except httpx.HTTPError:
        return False
    return response.status_code == 200
