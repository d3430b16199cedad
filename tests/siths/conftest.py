"""Shared fixtures: one SITHS-like test PKI served over real HTTP for the whole session."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from siths_support import Clock, free_socket, make_settings, serve

from broker.app import create_app
from broker.config import parse_settings
from broker.connectors.siths import SithsAuthenticator, TrustAnchors
from broker.connectors.siths.testpki import Card, SithsTestPKI, create_pki_app, create_test_pki
from broker.store import MemoryStore, open_store
from broker.store.scoped import ScopedStore
from tests.support.fakes import FakeSource, default_users
from tests.support.rp import FakeRP


@pytest.fixture(scope="session")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def pki_server(clock: Clock) -> Iterator[SithsTestPKI]:
    sock = free_socket()
    port = sock.getsockname()[1]
    pki = create_test_pki(f"http://127.0.0.1:{port}", clock=clock)
    config = uvicorn.Config(create_pki_app(pki), log_level="warning", lifespan="off")
    with serve(config, sock):
        yield pki


@pytest.fixture
def pki(pki_server: SithsTestPKI, clock: Clock) -> Iterator[SithsTestPKI]:
    pki_server.reset()
    clock.offset = 0.0
    yield pki_server
    pki_server.reset()
    clock.offset = 0.0


@pytest.fixture(name="make_settings")
def make_settings_fixture():
    """The settings builder, for tests (tests/siths is not a package, so no imports)."""
    return make_settings


@pytest.fixture
def store(clock: Clock) -> MemoryStore:
    return MemoryStore(clock=clock)


@pytest.fixture
async def make_auth(pki: SithsTestPKI, store: MemoryStore, clock: Clock):
    """Build a SithsAuthenticator against the served PKI; closed after the test."""
    made: list[SithsAuthenticator] = []

    def build(**overrides: Any) -> SithsAuthenticator:
        auth = SithsAuthenticator(make_settings(**overrides), ScopedStore(store, "siths"),
                                  trust=TrustAnchors.from_pem(pki.bundle_pem()), clock=clock)
        made.append(auth)
        return auth

    yield build
    for auth in made:
        await auth.aclose()


# --- the whole SITHS login: broker + nginx on the SITHS host (test_siths_*.py) -------------

SITHS_CLIENT = "lifecare"
SITHS_REDIRECT = "https://rp.example/cb"
#: nginx talks to the broker from this address only: the one trusted proxy.
PROXY_ADDRESS = "127.0.0.2"

NGINX_PROXY = """\
            proxy_pass http://127.0.0.1:{broker_port};
            proxy_bind {proxy_address};
            proxy_redirect off;  # the way back names the main host: leave it alone
            proxy_set_header Host $http_host;
            proxy_set_header ssl-client-cert $ssl_client_escaped_cert;
            proxy_set_header ssl-client-verify $ssl_client_verify;"""

NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {server_cert};
        ssl_certificate_key {server_key};
        ssl_protocols TLSv1.2 TLSv1.3;
        # The CA names the browser is shown, so it offers SITHS certificates only. Whatever
        # arrives the broker verifies itself: optional_no_ca lets a foreign certificate
        # through, and error_page 495 hands the ones nginx itself finds bad (expired, wrong
        # key usage) to the broker too, so the person gets our page and not a TLS error.
        ssl_client_certificate {ca_bundle};
        ssl_verify_client optional_no_ca;
        ssl_verify_depth 3;
        ssl_session_tickets off;
        error_page 495 = @siths;
        location /login/siths/ {{
{proxy}
        }}
        location @siths {{
            if ($uri !~ ^/login/siths/) {{ return 404; }}
{proxy}
        }}
        location /static/ {{
            proxy_pass http://127.0.0.1:{broker_port};
            proxy_bind {proxy_address};
        }}
        location / {{ return 404; }}
    }}
}}
"""


def nginx_binary() -> str:
    """Debian's nginx; a missing one fails the test (CI installs it in .ci/setup)."""
    path = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if path is None:
        pytest.fail("nginx is not installed: the SITHS proxy-mode tests need Debian's nginx "
                    "(apt-get install nginx, or run .ci/setup)")
    return path


@contextmanager
def run_nginx(directory: Path, **values: Any) -> Iterator[int]:
    """nginx in the foreground with its own prefix and temp dirs; yields its port."""
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "nginx.conf"
    proxy = NGINX_PROXY.format(proxy_address=PROXY_ADDRESS, **values)
    conf.write_text(NGINX_CONF.format(dir=directory, port=port, proxy_address=PROXY_ADDRESS,
                                      proxy=proxy, **values))
    proc = subprocess.Popen([nginx_binary(), "-p", str(directory), "-e", str(directory / "error.log"),
                             "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                log = (directory / "error.log").read_text() if (directory / "error.log").exists() else ""
                out = proc.stdout.read().decode() if proc.stdout else ""
                pytest.fail(f"nginx exited with {proc.returncode}: {out}{log}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("nginx did not listen within 10 s")
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class SithsStack:
    """A running broker (main host, plain HTTP) and nginx as the SITHS host (TLS)."""

    def __init__(self, issuer: str, broker_port: int, nginx_port: int, files: Path,
                 pki: SithsTestPKI, app: Any) -> None:
        self.issuer = issuer
        self.broker_port = broker_port
        self.nginx_port = nginx_port
        self.login_url = f"https://localhost:{nginx_port}/login/siths/"
        self.files = files
        self.pki = pki
        self.app = app

    def rp(self) -> FakeRP:
        return FakeRP(self.issuer, SITHS_CLIENT, SITHS_REDIRECT, "s" * 32)

    def card_files(self, card: Card) -> tuple[Path, Path]:
        """The card's chain (leaf + issuing CA) and key as files for load_cert_chain."""
        chain, key = self.files / f"{card.label}-chain.pem", self.files / f"{card.label}.key"
        chain.write_bytes(card.pem() + card.issuer.pem())
        key.write_bytes(card.key_pem())
        return chain, key

    def browser(self, card: Card | None = None, *, language: str = "sv") -> httpx.Client:
        """A 'browser' that trusts the test root and, given a card, presents it on TLS."""
        ctx = ssl.create_default_context(cafile=str(self.files / "root.pem"))
        if card is not None:
            ctx.load_cert_chain(*map(str, self.card_files(card)))
        return httpx.Client(base_url=self.issuer, verify=ctx, timeout=10,
                            headers={"accept-language": language})

    def header_value(self, card: Card) -> str:
        """What nginx's $ssl_client_escaped_cert would carry for this card."""
        return quote(card.pem().decode(), safe="")

    def to_siths_host(self, browser: httpx.Client, rp: FakeRP, **params: Any) -> httpx.Response:
        """/authorize on the main host up to the 303 towards the SITHS host."""
        response = rp.authorize(browser, **params)
        assert response.status_code == 303, response.text[:300]
        assert response.headers["location"].startswith(self.login_url + "?ref=")
        return response

    def login(self, browser: httpx.Client, rp: FakeRP | None = None, **params: Any) -> httpx.Response:
        """Main host -> SITHS host (nginx) -> main host; the last response (RP redirect or page)."""
        rp = rp or self.rp()
        hop = browser.get(self.to_siths_host(browser, rp, **params).headers["location"])
        assert hop.status_code == 303, hop.text[:300]
        assert hop.headers["location"].startswith(self.issuer + "/login/siths/return?result=")
        return browser.get(hop.headers["location"])


def siths_config(issuer: str, tmp: Path, store_url: str, siths: dict[str, Any]) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "store": {"url": store_url, "prefix": f"siths{os.getpid()}{time.monotonic_ns()}:"},
        "keys": {"dir": str(tmp / "keys"), "generate": True},
        "audit": {"target": str(tmp / "audit.log")},
        "clients": [{
            "client_id": SITHS_CLIENT, "client_name": "Lifecare", "client_secret": "s" * 32,
            "redirect_uris": [SITHS_REDIRECT],
            "scopes": ["openid", "profile", "https://id.oidc.se/scope/naturalPersonNumber",
                       "assignments"],
        }],
        "connectors": {"siths": siths},
    }


@pytest.fixture(scope="session")
def siths_helpers() -> SimpleNamespace:
    """Config builder and client names for test modules (conftest is not importable)."""
    return SimpleNamespace(config=siths_config, client=SITHS_CLIENT, redirect=SITHS_REDIRECT,
                           rp=lambda issuer: FakeRP(issuer, SITHS_CLIENT, SITHS_REDIRECT, "s" * 32))


@pytest.fixture(scope="module")
def siths_stack(redis: str, pki_server: SithsTestPKI, tmp_path_factory) -> Iterator[SithsStack]:
    """Broker + nginx for a test module. Connectors load from settings (connectors=None)."""
    nginx_binary()
    tmp = tmp_path_factory.mktemp("siths-stack")
    files = tmp / "pki"
    pki_server.issue_server("nginx", ["localhost", "127.0.0.1"])
    paths = pki_server.write_files(files)
    sock = free_socket()
    broker_port = sock.getsockname()[1]
    issuer = f"http://127.0.0.1:{broker_port}"
    nginx_dir = tmp / "nginx"
    with run_nginx(nginx_dir, broker_port=broker_port, server_cert=paths["nginx-chain.pem"],
                   server_key=paths["nginx.key"], ca_bundle=paths["ca-bundle.pem"]) as nginx_port:
        siths = {"mode": "proxy", "login_url": f"https://localhost:{nginx_port}/login/siths/",
                 "proxy": {"trusted_proxies": [f"{PROXY_ADDRESS}/32"]},
                 "trust": {"ca_bundle": str(paths["ca-bundle.pem"])},
                 "revocation": {"ocsp_timeout": 2, "crl_timeout": 2}}
        settings = parse_settings(siths_config(issuer, tmp, redis, siths), str(tmp / "broker.yaml"))
        app = create_app(settings, store=open_store(redis, settings.store.prefix),
                         source=FakeSource(default_users((SITHS_CLIENT,))))
        # The same uvicorn flags as `broker serve`: no proxy-headers rewriting of the peer.
        config = uvicorn.Config(app, log_level="warning", lifespan="on", proxy_headers=False)
        with serve(config, sock):
            yield SithsStack(issuer, broker_port, nginx_port, files, pki_server, app)
