"""Direct mode: a real TLS handshake through uvicorn with the adapter protocol."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
from cryptography.x509.oid import NameOID
from siths_support import free_socket, serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from broker.connectors.siths import certificate_from_scope
from broker.connectors.siths.direct import (
    TlsH11Protocol,
    UnsupportedUvicorn,
    build_server_ssl_context,
    check_uvicorn_version,
    direct_server_config,
)
from broker.connectors.siths.settings import DirectSettings
from broker.connectors.siths.testpki import create_test_pki


async def whoami(request: Request) -> JSONResponse:
    presented = certificate_from_scope(request.scope)
    tls = request.scope.get("extensions", {}).get("tls", {})
    serial = None
    if presented is not None:
        serial = presented.leaf.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value
    return JSONResponse({
        "serial_number": serial,
        "tls_version": tls.get("tls_version"),
        "client_cert_name": tls.get("client_cert_name"),
    })


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    pki = create_test_pki("http://pki.test")
    pki.issue_server("server", ["127.0.0.1", "localhost"])
    directory = tmp_path_factory.mktemp("pki")
    paths = pki.write_files(directory, password="secret")
    return pki, directory, paths


def client_context(directory: Path, pki, card: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(directory / "root.pem"))
    if card is not None:
        ctx.load_cert_chain(str(directory / f"{card}.pem"), str(directory / f"{card}.key"))
    return ctx


@pytest.mark.parametrize("http", ["h11", "auto"])
def test_direct_mode_real_handshake(files, http):
    pki, directory, _ = files
    settings = DirectSettings(certfile="server-chain.pem", keyfile="server.key")
    config = direct_server_config(
        Starlette(routes=[Route("/whoami", whoami)]), settings, ca_bundle="ca-bundle.pem",
        base_dir=directory, log_level="warning", lifespan="off",
    )
    if http == "h11":
        config.http = TlsH11Protocol
    sock = free_socket()
    port = sock.getsockname()[1]
    with serve(config, sock):
        url = f"https://127.0.0.1:{port}/whoami"
        with httpx.Client(verify=client_context(directory, pki, "anna-hsa"), timeout=5) as c:
            seen = c.get(url).json()
        assert seen["serial_number"] == "SE2321000016-1234"
        assert seen["tls_version"] in (0x0303, 0x0304)
        assert "SE2321000016-1234" in seen["client_cert_name"]

        with httpx.Client(verify=client_context(directory, pki, "anna-pnr"), timeout=5) as c:
            assert c.get(url).json()["serial_number"] == "199001012385"

        with httpx.Client(verify=client_context(directory, pki, None), timeout=5) as c:
            seen = c.get(url).json()
        assert seen["serial_number"] is None
        assert seen["client_cert_name"] is None

        # a card from a foreign hierarchy cannot even finish the handshake (Python's ssl)
        foreign = create_test_pki("http://evil.test")
        foreign_dir = directory / "foreign"
        foreign.write_files(foreign_dir)
        ctx = ssl.create_default_context(cafile=str(directory / "root.pem"))
        ctx.load_cert_chain(str(foreign_dir / "anna-hsa.pem"), str(foreign_dir / "anna-hsa.key"))
        with httpx.Client(verify=ctx, timeout=5) as c, pytest.raises(httpx.HTTPError):
            c.get(url)


def test_server_context_asks_for_optional_client_cert(files):
    _, directory, _ = files
    ctx = build_server_ssl_context(directory / "server-chain.pem", directory / "server.key",
                                   directory / "ca-bundle.pem")
    assert ctx.verify_mode == ssl.CERT_OPTIONAL
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert {c["subject"][-1][0][1] for c in ctx.get_ca_certs()} >= {
        "TEST SITHS e-id Root CA v2", "TEST SITHS e-id Person HSA-id 3 CA v1"}


@pytest.mark.parametrize("version", ["0.55.0", "1.0.0", "0.53.2", "garbage"])
def test_other_uvicorn_versions_fail_loudly(version):
    with pytest.raises(UnsupportedUvicorn, match="tested"):
        check_uvicorn_version(version)


def test_tested_uvicorn_version_passes():
    check_uvicorn_version("0.54.9")
