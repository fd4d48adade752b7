"""Debian's nginx with packaging/nginx/campaign-pulse.conf in front of the fault deployment's two
servers, over TLS: REST, /readyz and the body limit through it, and WebSocket clients that
resume through it, with nothing lost or duplicated, when the server they were on is killed.

The shipped template is rendered as an admin would render it (its ${PROXY_...} values only),
with a self-signed certificate for 127.0.0.1, and included from a small nginx.conf that keeps
nginx's pid, logs and temporary files in a folder of the test.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import shutil
import ssl
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from pulse_cli.process import Process, free_port, wait_until
from tests.backend import DEMO_PASSWORD
from tests.faults.clients import Producer, ResumingClient, heads_of, tally, wait_for
from tests.faults.cluster import Cluster
from tests.faults.figures import record_delivery
from tests.faults.helpers import ALICE, active_campaign

# The proxy does not depend on the database: one backend is enough.
pytestmark = [pytest.mark.faults, pytest.mark.parametrize("cluster", ["sqlite"], indirect=True)]

TEMPLATE = Path(__file__).resolve().parents[2] / "packaging" / "nginx" / "campaign-pulse.conf"
PLACEHOLDER = re.compile(r"\$\{(PROXY_[A-Z0-9_]+)\}")
NGINX = shutil.which("nginx") or next(
    (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(path).exists()), None
)
CLIENTS = 6
EVENTS_PER_SECOND = 20
MAX_BODY_BYTES = 1024 * 1024  # the server's default PULSE_MAX_BODY_BYTES


def render(template: str, values: dict[str, str]) -> str:
    """What `envsubst '${PROXY_...}'` makes of the template: only its own placeholders."""
    assert set(PLACEHOLDER.findall(template)) == set(values), "the template's placeholders changed"
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1, valid for a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "fullchain.pem", directory / "privkey.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def main_config(directory: Path, site: Path) -> str:
    """An nginx.conf that includes the site and keeps everything of nginx's in `directory`.

    Its access log names the server each request went to, so that the test can tell which
    WebSockets the killed server held.
    """
    temp = directory / "temp"
    temp.mkdir()
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers may read the test's files
    return f"""{user}worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log notice;
events {{ worker_connections 256; }}
http {{
    log_format upstreams '$request_uri $status $upstream_addr';
    access_log {directory}/access.log upstreams;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {site};
}}
"""


@dataclass
class Nginx:
    """nginx in the foreground, a child of the test run."""

    directory: Path
    http_port: int
    https_port: int
    certificate: Path
    process: Process = field(init=False)

    def __post_init__(self) -> None:
        directory = self.directory
        self.process = Process(
            "nginx",
            [
                *[str(NGINX), "-p", str(directory), "-c", str(directory / "nginx.conf")],
                *["-e", str(directory / "error.log"), "-g", "daemon off;"],
            ],
            log_path=directory / "nginx.out",
        )

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def ws_url(self) -> str:
        return f"wss://127.0.0.1:{self.https_port}/api/ws"

    def tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.certificate))
        # The test's certificate is its own authority; Python 3.13 would ask for CA extensions.
        context.verify_flags &= ~ssl.VERIFY_X509_STRICT
        return context

    def start(self) -> None:
        self.process.start()
        context = self.tls()

        def answers() -> bool:
            self.process.ensure_alive()
            try:
                return httpx.get(f"{self.url}/healthz", verify=context, timeout=2).is_success
            except httpx.HTTPError:
                return False

        wait_until(answers, 15, "nginx to answer")

    def log(self) -> str:
        return "\n".join(
            path.read_text(errors="replace")[-3000:]
            for path in (self.directory / "nginx.out", self.directory / "error.log")
            if path.exists()
        )

    def websockets_ended_on(self, port: int) -> int:
        """WebSockets (101) that ended, as nginx logged them, whose server was on `port`."""
        path = self.directory / "access.log"
        lines = path.read_text().splitlines() if path.exists() else []
        return sum(1 for line in lines if line == f"/api/ws 101 127.0.0.1:{port}")


@pytest.fixture(scope="module")
def proxy(cluster: Cluster) -> Iterator[Nginx]:
    """nginx with the shipped configuration in front of the deployment's two servers."""
    if NGINX is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("nginx is not installed: .ci/run installs Debian's nginx")
        pytest.skip("nginx is not installed (Debian: apt-get install nginx)")
    directory = Path(tempfile.mkdtemp(prefix="pulse-nginx-"))
    directory.chmod(0o755)
    cert, key = self_signed_certificate(directory)
    http_port, https_port = free_port(), free_port()
    site = directory / "campaign-pulse.conf"
    site.write_text(
        render(
            TEMPLATE.read_text(),
            {
                "PROXY_SERVER_NAME": "127.0.0.1",
                "PROXY_HTTP_PORT": str(http_port),
                "PROXY_HTTPS_PORT": str(https_port),
                "PROXY_UPSTREAM_1": f"127.0.0.1:{cluster.servers[0].port}",
                "PROXY_UPSTREAM_2": f"127.0.0.1:{cluster.servers[1].port}",
                "PROXY_TLS_CERT": str(cert),
                "PROXY_TLS_KEY": str(key),
            },
        )
    )
    (directory / "nginx.conf").write_text(main_config(directory, site))
    nginx = Nginx(directory, http_port, https_port, cert)
    try:
        nginx.start()
        yield nginx
    except BaseException:
        print(nginx.log())
        raise
    finally:
        nginx.process.stop()
        shutil.rmtree(directory, ignore_errors=True)


def test_login_readiness_redirect_and_body_limit_through_the_proxy(
    running: Cluster, proxy: Nginx
) -> None:
    with httpx.Client(base_url=proxy.url, verify=proxy.tls(), timeout=10) as http:
        ready = http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready", ready.text
        assert "max-age=" in ready.headers["strict-transport-security"]
        login = http.post("/api/auth/login", json={"email": ALICE, "password": DEMO_PASSWORD})
        assert login.status_code == 200, login.text
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        listed = http.get("/api/campaigns", headers=auth)
        assert listed.status_code == 200 and listed.json(), listed.text

        # What the server accepts passes the proxy; one byte more is refused by nginx, in the
        # servers' own error shape.
        json_type = {"content-type": "application/json"}
        at_limit = http.post("/api/auth/login", content=b" " * MAX_BODY_BYTES, headers=json_type)
        assert at_limit.status_code == 422, at_limit.text
        over = http.post("/api/auth/login", content=b" " * (MAX_BODY_BYTES + 1), headers=json_type)
        assert over.status_code == 413 and "larger than" in over.json()["detail"], over.text

    plain = httpx.get(f"http://127.0.0.1:{proxy.http_port}/api/campaigns?limit=5", timeout=10)
    assert plain.status_code == 301
    assert plain.headers["location"] == f"{proxy.url}/api/campaigns?limit=5"


async def test_clients_through_the_proxy_resume_on_the_other_server_when_theirs_is_killed(
    running: Cluster, proxy: Nginx
) -> None:
    cluster = running
    tls = proxy.tls()
    async with httpx.AsyncClient(base_url=proxy.url, verify=tls, timeout=10) as http:
        login = await http.post("/api/auth/login", json={"email": ALICE, "password": DEMO_PASSWORD})
        login.raise_for_status()
    token, marketer_id = login.json()["access_token"], login.json()["user"]["marketer_id"]
    campaign_id = await active_campaign(cluster, token)
    topics = [f"marketer:{marketer_id}:campaigns", f"campaign:{campaign_id}"]
    clients = [
        ResumingClient(
            f"c{n}", [proxy.ws_url], token, topics, switch_servers=False, ssl_context=tls
        )
        for n in range(CLIENTS)
    ]
    producer = Producer(cluster.database_url_for_tests, cluster.redis_url, campaign_id)
    victim = cluster.servers[0]
    ended_before = proxy.websockets_ended_on(victim.port or 0)
    for client in clients:
        client.start()
    try:
        await asyncio.wait_for(asyncio.gather(*(c.subscribed.wait() for c in clients)), 15)
        before = await heads_of(cluster.direct_database_url, topics)
        producer.start(EVENTS_PER_SECOND)
        await wait_for(lambda: producer.committed >= EVENTS_PER_SECOND, 15, "events to flow")
        victim.kill9()
        killed_at = time.time()
        await wait_for(
            lambda: (
                any(c.disconnected_at for c in clients)
                and all(c.resumed_at for c in clients if c.disconnected_at)
            ),
            15,
            "the killed server's clients to resubscribe through the proxy",
        )
        resumed_with = producer.committed
        await wait_for(
            lambda: producer.committed >= resumed_with + EVENTS_PER_SECOND,
            15,
            "events to flow after the kill",
        )
        async with httpx.AsyncClient(base_url=proxy.url, verify=tls, timeout=10) as http:
            ready = await http.get("/readyz")
        await producer.stop()
        heads = await heads_of(cluster.direct_database_url, topics)
        await wait_for(
            lambda: all(c.caught_up(heads) for c in clients), 30, "every client to catch up"
        )
    finally:
        await producer.stop()
        for client in clients:
            await client.stop()

    assert ready.status_code == 200, ready.text  # the other server answers for the proxy
    moved = [c for c in clients if c.connections >= 2]
    assert moved, "no client was on the killed server"
    assert all(c.connections == 1 for c in clients if c not in moved)
    assert proxy.websockets_ended_on(victim.port or 0) - ended_before == len(moved)
    delivery = tally(clients, heads, before)
    assert delivery.lost == 0 and delivery.duplicated == 0 and delivery.resyncs == 0, delivery
    for client in clients:
        for topic, log in client.topics.items():
            assert log.start_seq is not None
            assert log.received == list(range(log.start_seq + 1, heads[topic] + 1)), client.name
            assert not log.gaps
    recovered = max(c.resumed_at[0] for c in moved) - killed_at
    record_delivery(
        cluster.backend,
        f"kill -9 a server behind nginx with {CLIENTS} clients ({len(moved)} on it)",
        delivery,
        recovered,
        (
            "clients know only the proxy's wss:// address; recovery = kill to the last moved "
            "client resubscribed with after, through the proxy, on the other server"
        ),
    )
