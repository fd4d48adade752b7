"""How the desktop reaches its server on a corporate network, decided once for REST and live.

Certificates are checked against the operating system's store (`truststore`), plus the file
or folder named by `SSL_CERT_FILE` / `SSL_CERT_DIR`. Requests go through the proxy that
`HTTPS_PROXY`, `HTTP_PROXY` or `ALL_PROXY` names (else the system's proxy settings on Windows
and macOS), except for the hosts in `NO_PROXY` and this computer's own loopback addresses.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import ssl
import urllib.request
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

SECURE_SCHEMES = ("https", "wss")


def ssl_context() -> ssl.SSLContext:
    """A client TLS context that trusts what the system trusts (and SSL_CERT_FILE/DIR)."""
    try:
        import truststore
    except ImportError:  # a build without it: OpenSSL's own defaults
        context = ssl.create_default_context()
    else:
        context = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cafile = os.environ.get("SSL_CERT_FILE") or None
    capath = os.environ.get("SSL_CERT_DIR") or None
    if cafile or capath:  # explicit extra authorities, also where the store is not OpenSSL's
        try:
            context.load_verify_locations(cafile=cafile, capath=capath)
        except (OSError, ssl.SSLError) as exc:
            log.warning("ignoring SSL_CERT_FILE/SSL_CERT_DIR (%s, %s): %s", cafile, capath, exc)
    return context


def proxy_for(url: str) -> str | None:
    """The HTTP proxy that connections to `url` go through, or None to connect directly."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host or _is_loopback(host) or urllib.request.proxy_bypass(host):
        return None
    proxies = urllib.request.getproxies()
    secure = parts.scheme in SECURE_SCHEMES
    proxy = (proxies.get("https") if secure else None) or proxies.get("http")
    proxy = proxy or proxies.get("all")
    if not proxy:
        return None
    if "://" not in proxy:
        proxy = "http://" + proxy
    if urlsplit(proxy).scheme not in ("http", "https"):
        log.warning("only HTTP proxies are supported: connecting to %s directly", host)
        return None
    return proxy


def http_options(url: str) -> dict[str, Any]:
    """httpx.AsyncClient arguments for a server at `url`."""
    proxy = proxy_for(url)
    if proxy:
        log.info("connecting to %s through the proxy %s", url, _without_password(proxy))
    secure = urlsplit(url).scheme in SECURE_SCHEMES or (
        proxy is not None and urlsplit(proxy).scheme == "https"
    )
    # A plain-HTTP server, reached directly or through an HTTP proxy, never speaks TLS: no
    # certificate store to load (40-300 ms of every start, on the way to signing in).
    return {"verify": ssl_context() if secure else False, "proxy": proxy}


def websocket_options(url: str) -> dict[str, Any]:
    """websockets.connect arguments for a ws:// or wss:// `url`."""
    options: dict[str, Any] = {"proxy": proxy_for(url)}
    if urlsplit(url).scheme in SECURE_SCHEMES:
        options["ssl"] = ssl_context()
    return options


def is_certificate_error(error: BaseException) -> bool:
    """Whether `error` (or what caused it) is a refused server certificate."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    port = f":{parts.port}" if parts.port else ""
    return parts._replace(netloc=f"{parts.username}:***@{parts.hostname}{port}").geturl()
