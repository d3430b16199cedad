"""Direct mode as `broker demo` runs it: `prepare_demo` files, the same app on a second TLS
port (`host.py`), a real TLS handshake with a test card, the demo PKI's OCSP server."""

from __future__ import annotations

import asyncio
import ssl
import threading
import time

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.serialization import pkcs12
from siths_support import free_socket, serve

from broker.app import create_app
from broker.config import parse_settings
from broker.connectors.siths.demo import prepare_demo
from broker.connectors.siths.host import serve_with_siths_host, siths_server_config
from tests.support.fakes import FakeSource, default_users
from tests.support.redis import wait_for_port


class DirectStack:
    def __init__(self, issuer: str, demo, make_rp) -> None:
        self.issuer = issuer
        self.demo = demo
        self.rp = lambda: make_rp(issuer)

    def browser(self, label: str | None) -> httpx.Client:
        ctx = ssl.create_default_context(cafile=str(self.demo.root_ca))
        if label is not None:
            d = self.demo.directory
            ctx.load_cert_chain(str(d / f"{label}-chain.pem"), str(d / f"{label}.key"))
        return httpx.Client(base_url=self.issuer, verify=ctx, timeout=10)

    def login(self, browser: httpx.Client, rp) -> httpx.Response:
        to_siths = rp.authorize(browser)
        assert to_siths.status_code == 303
        assert to_siths.headers["location"].startswith(self.demo.login_url + "?ref=")
        back = browser.get(to_siths.headers["location"])
        assert back.status_code == 303, back.text[:300]
        return browser.get(back.headers["location"])


def _free_port() -> int:
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture(scope="module")
def direct(tmp_path_factory, siths_helpers):
    tmp = tmp_path_factory.mktemp("siths-direct")
    pki_sock = free_socket()
    siths_port, main_port = _free_port(), _free_port()
    demo = prepare_demo(tmp / "siths", "localhost", siths_port, pki_sock.getsockname()[1],
                        card_password="demo-card")
    issuer = f"http://127.0.0.1:{main_port}"
    settings = parse_settings(siths_helpers.config(issuer, tmp, "memory://", demo.settings),
                              str(tmp / "broker.yaml"))
    app = create_app(settings, source=FakeSource(default_users((siths_helpers.client,))))
    main = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=main_port,
                                         log_level="warning", proxy_headers=False))
    siths = uvicorn.Server(siths_server_config(app, settings, log_level="warning"))
    pki_config = uvicorn.Config(demo.pki_app, log_level="warning", lifespan="off")
    with serve(pki_config, pki_sock):
        thread = threading.Thread(target=asyncio.run, args=(serve_with_siths_host(main, siths),),
                                  daemon=True)
        thread.start()
        wait_for_port(main_port)
        wait_for_port(siths_port)
        deadline = time.monotonic() + 10
        while not (main.started and siths.started) and time.monotonic() < deadline:
            time.sleep(0.02)
        try:
            yield DirectStack(issuer, demo, siths_helpers.rp)
        finally:
            main.should_exit = True  # the tie stops the SITHS listener too
            thread.join(10)
    assert not thread.is_alive()


def test_demo_card_logs_in_over_a_real_tls_handshake(direct):
    client = direct.rp()
    with direct.browser("anna-hsa") as browser:
        done = direct.login(browser, client)
    tokens = client.token(client.callback(done)["code"])
    assert tokens.status_code == 200, tokens.text
    claims = client.verify(tokens.json()["id_token"])
    assert claims["employeeHsaId"] == "SE2321000016-1234"
    assert claims["sub"] == "u-anna"


def test_no_card_over_tls_gets_the_page(direct):
    with direct.browser(None) as browser:
        page = direct.login(browser, direct.rp())
    assert page.status_code == 400
    assert 'data-error="siths_no_certificate"' in page.text


def test_revoked_card_over_tls_gets_the_page(direct):
    pki = direct.demo.pki
    card = pki.issue_person(pki.hsa_id_3, label="revoked-direct", given_name="Anna",
                            surname="Andersson", serial="SE2321000016-1234")
    (direct.demo.directory / "revoked-direct-chain.pem").write_bytes(card.pem() + card.issuer.pem())
    (direct.demo.directory / "revoked-direct.key").write_bytes(card.key_pem())
    pki.revoke(card)
    with direct.browser("revoked-direct") as browser:
        page = direct.login(browser, direct.rp())
    assert page.status_code == 400
    assert 'data-error="siths_revoked"' in page.text


def test_main_host_never_asks_for_a_certificate(direct):
    """The issuer is plain HTTP here; the certificate endpoint is not served on it."""
    with httpx.Client(timeout=5) as plain:
        assert plain.get(direct.issuer + "/login/siths/?ref=" + "A" * 43).status_code == 404


def test_demo_files_are_what_the_readme_promises(direct):
    demo = direct.demo
    key, cert, extra = pkcs12.load_key_and_certificates(demo.card.read_bytes(), b"demo-card")
    assert key is not None and extra  # the card carries its issuing CA
    assert "SE2321000016-1234" in cert.subject.rfc4514_string()
    assert demo.settings["mode"] == "direct"
    assert demo.login_url == f"https://localhost:{demo.settings['direct']['port']}/login/siths/"
    assert demo.pki_url.startswith("http://localhost:")
    assert {"anna-hsa", "anna-pnr", "bertil-reserve"} <= set(demo.cards)
