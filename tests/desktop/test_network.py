"""The desktop client on a corporate network: through the HTTPS_PROXY, to a server whose
certificate the company's own authority signed."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

from desktop.client import network
from desktop.client.errors import UnreachableError
from desktop.client.live import LinkState, LiveClient
from desktop.client.rest import RestClient
from tests.backend import ALICE, DEMO_PASSWORD, LiveBackend, free_port
from tests.connect_proxy import ConnectProxy, TlsFront

from .test_live_client import Recorder

HOST = "pulse.corp.example"  # resolves nowhere: only the proxy knows where it is
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY", "SSL_CERT_FILE")


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


@pytest.fixture
def corporate_network(
    clean_environment: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Callable[[int], ConnectProxy]]:
    """`(server port) -> proxy`: HTTPS_PROXY set, the server behind TLS from a company CA
    written to `tmp_path / "company-ca.pem"`."""
    company = trustme.CA()
    company.cert_pem.write_to_path(str(tmp_path / "company-ca.pem"))
    started: list[ConnectProxy | TlsFront] = []

    def build(server_port: int) -> ConnectProxy:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        company.issue_cert(HOST).configure_cert(tls)
        front = TlsFront(server_port, tls)
        front.start()
        proxy = ConnectProxy({HOST: front.port})
        proxy.start()
        started.extend((front, proxy))
        clean_environment.setenv("HTTPS_PROXY", proxy.url)
        return proxy

    yield build
    for server in started:
        server.stop()


def test_proxy_choice_follows_the_environment(clean_environment: pytest.MonkeyPatch) -> None:
    env = clean_environment
    assert network.proxy_for("https://pulse.example") is None
    env.setenv("ALL_PROXY", "proxy.example:3128")
    assert network.proxy_for("https://pulse.example") == "http://proxy.example:3128"
    env.setenv("HTTPS_PROXY", "http://secure.example:8080")
    env.setenv("HTTP_PROXY", "http://plain.example:8080")
    assert network.proxy_for("wss://pulse.example/api/ws") == "http://secure.example:8080"
    assert network.proxy_for("http://pulse.example") == "http://plain.example:8080"
    env.setenv("NO_PROXY", ".internal.example")
    assert network.proxy_for("https://pulse.internal.example") is None
    assert network.proxy_for("http://127.0.0.1:8765") is None  # this computer: never proxied
    assert network.proxy_for("http://localhost:8765") is None
    env.setenv("HTTPS_PROXY", "socks5://socks.example:1080")
    assert network.proxy_for("https://pulse.example") is None  # not supported: direct


def test_only_a_connection_that_speaks_tls_loads_the_certificate_store(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    loaded: list[ssl.SSLContext] = []
    make = network.ssl_context
    clean_environment.setattr(network, "ssl_context", lambda: loaded.append(make()) or loaded[-1])
    assert network.http_options("http://127.0.0.1:8765")["verify"] is False
    clean_environment.setenv("HTTP_PROXY", "http://plain.example:8080")
    assert network.http_options("http://pulse.example")["verify"] is False
    assert not loaded
    assert network.http_options("https://pulse.example")["verify"] is loaded[-1]
    clean_environment.setenv("HTTP_PROXY", "https://secure.example:8443")
    assert network.http_options("http://pulse.example")["verify"] is loaded[-1]
    assert len(loaded) == 2


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the network is the point
async def test_rest_and_live_reach_the_server_through_the_proxy_with_the_company_ca(
    live_backend: LiveBackend,
    corporate_network: Callable[[int], ConnectProxy],
    clean_environment: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    proxy = corporate_network(live_backend.settings.port)
    clean_environment.setenv("SSL_CERT_FILE", str(tmp_path / "company-ca.pem"))
    rest = RestClient(f"https://{HOST}")
    try:
        user = await rest.login(ALICE, DEMO_PASSWORD)
        assert await rest.campaigns()
        recorder = Recorder()
        live = LiveClient(rest.server_url, user.token, recorder)
        task = asyncio.create_task(live.run())
        await live.subscribe(user.marketer_topic)
        await recorder.until(lambda: bool(recorder.subscribed), timeout=15)
        assert recorder.state is LinkState.CONNECTED
        await live.close()
        await asyncio.wait_for(task, 10)
    finally:
        await rest.aclose()
    assert proxy.tunnels == [f"{HOST}:443", f"{HOST}:443"]  # REST, then the WebSocket


async def test_a_certificate_the_system_does_not_trust_says_what_to_do(
    corporate_network: Callable[[int], ConnectProxy],
) -> None:
    proxy = corporate_network(free_port())  # the handshake fails before any server is needed
    rest = RestClient(f"https://{HOST}")
    try:
        with pytest.raises(UnreachableError, match="certificate this computer does not trust"):
            await rest.login(ALICE, DEMO_PASSWORD)
    finally:
        await rest.aclose()
    assert proxy.tunnels == [f"{HOST}:443"]
