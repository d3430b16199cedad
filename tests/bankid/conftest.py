"""Fixtures for the BankID tests: a throwaway PKI, a fake clock, the simulator in-process
and the simulator behind uvicorn with real mutual TLS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from broker.simulators.bankid import create_simulator_app
from broker.simulators.bankid_settings import BankIDSimulatorSettings
from tests.support.server import running

P12_PASSWORD = "qwerty123"
KEY_PASSWORD = "hemligt-nyckel"


class FakeClock:
    """Epoch-like seconds that only move when a test says so (thread-safe enough for
    a float read by the server thread)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Pki:
    dir: Path
    ca: Path
    server_cert: Path
    server_key: Path
    client_p12: Path
    client_cert: Path
    client_key: Path  # encrypted with KEY_PASSWORD
    client_cert_pem: str
    other_p12: Path  # a client certificate from a CA the server does not trust
    other_ca: Path
    p12_password: str = P12_PASSWORD
    key_password: str = KEY_PASSWORD


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test")])


def _cert(subject: str, key: Any, issuer: x509.Name, issuer_key: Any, *, ca: bool,
          san: list[x509.GeneralName] | None = None,
          eku: list[x509.ObjectIdentifier] | None = None) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                            critical=False)
    else:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer_key.public_key()), critical=False)
    if san:
        b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key(key: Any, password: str | None = None) -> bytes:
    enc = (serialization.BestAvailableEncryption(password.encode()) if password
           else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("Test BankID SSL Root", ca_key, _name("Test BankID SSL Root"), ca_key, ca=True)
    srv_key = ec.generate_private_key(ec.SECP256R1())
    srv = _cert("localhost", srv_key, ca.subject, ca_key, ca=False,
                san=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
                eku=[ExtendedKeyUsageOID.SERVER_AUTH])
    cli_key = ec.generate_private_key(ec.SECP256R1())
    cli = _cert("FP Testcert RP", cli_key, ca.subject, ca_key, ca=False,
                eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    other_ca_key = ec.generate_private_key(ec.SECP256R1())
    other_ca = _cert("Some Other CA", other_ca_key, _name("Some Other CA"), other_ca_key, ca=True)
    other_key = ec.generate_private_key(ec.SECP256R1())
    other = _cert("Intruder RP", other_key, other_ca.subject, other_ca_key, ca=False,
                  eku=[ExtendedKeyUsageOID.CLIENT_AUTH])

    def write(name: str, data: bytes) -> Path:
        p = d / name
        p.write_bytes(data)
        return p

    enc = serialization.BestAvailableEncryption(P12_PASSWORD.encode())
    return Pki(
        dir=d,
        ca=write("ca.pem", _pem(ca)),
        server_cert=write("server.pem", _pem(srv)),
        server_key=write("server.key", _key(srv_key)),
        client_p12=write("rp.p12", pkcs12.serialize_key_and_certificates(
            b"rp", cli_key, cli, None, enc)),
        client_cert=write("rp.pem", _pem(cli)),
        client_key=write("rp.key", _key(cli_key, KEY_PASSWORD)),
        client_cert_pem=_pem(cli).decode(),
        other_p12=write("other.p12", pkcs12.serialize_key_and_certificates(
            b"other", other_key, other, None, enc)),
        other_ca=write("other-ca.pem", _pem(other_ca)),
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_sim(clock: FakeClock) -> Any:
    """Build an in-process simulator with these settings on the test's fake clock."""

    def make(**settings: Any) -> Any:
        return create_simulator_app(BankIDSimulatorSettings(**settings), clock=clock)

    return make


@pytest.fixture
def sim_app(make_sim: Any) -> Any:
    return make_sim()


@pytest.fixture
async def raw(sim_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client for the in-process simulator (to send anything at all)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim_app),
                                 base_url="http://sim") as c:
        yield c


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class TLSServer:
    base_url: str
    control_url: str
    app: Any
    clock: FakeClock

    @property
    def sim(self) -> Any:
        return self.app.state.simulator


@pytest.fixture(scope="session")
def tls_server(pki: Pki) -> Iterator[TLSServer]:
    """The simulator under uvicorn, HTTPS with client certificates required."""
    clock = FakeClock()
    app = create_simulator_app(BankIDSimulatorSettings(), clock=clock)
    port = _free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
        ssl_certfile=str(pki.server_cert), ssl_keyfile=str(pki.server_key),
        ssl_ca_certs=str(pki.ca), ssl_cert_reqs=ssl.CERT_REQUIRED,
    )
    with running(config):
        base = f"https://127.0.0.1:{port}"
        yield TLSServer(base_url=f"{base}/rp/v6.0/", control_url=base, app=app, clock=clock)


@pytest.fixture
def tls_sim(tls_server: TLSServer) -> TLSServer:
    """The shared TLS simulator, emptied for this test."""
    tls_server.sim.reset()
    return tls_server
