"""A SITHS-like test PKI and a local OCSP responder + CRL endpoint, for tests and `broker demo`.

No public TEST SITHS *person* certificate exists (reference §9), so we mint our own that copy
the real conventions: issuer DNs `C=SE, O=..., CN=TEST SITHS e-id Person HSA-id 3 CA v1`,
subject `serialNumber` = HSA-id or personnummer, `givenName`, `surname`, `CN`; the
authentication certificate has KeyUsage digitalSignature (critical) and EKU clientAuth, its
signature twin nonRepudiation only; AIA OCSP/caIssuers and CDP point at `base_url`.

The hierarchy (names get `prefix`, "TEST " by default; organisation says it is not Inera)::

    TEST SITHS e-id Root CA v2
    +- TEST SITHS e-id Person HSA-id 3 CA v1   Anna Andersson, SE2321000016-1234 (LoA 3)
    +- TEST SITHS e-id Person ID 3 CA v1       Anna Andersson, 199001012385       (LoA 3)
    +- TEST SITHS e-id Person HSA-id 2 CA v1   reserve card: Bertil Berg, SE2321000016-5678 (LoA 2)
    +- TEST SITHS e-id Function CA v1          server certificates (direct mode / demo host)

Each issuing CA has a delegated OCSP responder certificate (EKU OCSPSigning + ocsp-nocheck).
`create_pki_app(pki)` serves `POST /ocsp`, `GET /ocsp/{base64}`, `GET /crl/{slug}.crl` and
`GET /ca/{slug}.cer` with real signed answers; tests steer it through the `SithsTestPKI`
object (revoke, unknown, down, ...). All state lives on that object, none in the module.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from .settings import TEST_PKI_ORGANISATION

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
KeyType = Literal["ec", "rsa"]
OcspMode = Literal["normal", "down", "trylater", "foreign-signer", "wrong-nonce", "stale"]

UPN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")
SMARTCARD_LOGON = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.2")
ORGANISATION = TEST_PKI_ORGANISATION  # start-up refuses it on a deployment (config.py)


def _key(kind: KeyType) -> PrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _ca_name(cn: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


@dataclass
class Authority:
    """A CA of the test hierarchy, with its delegated OCSP responder."""

    slug: str
    cert: x509.Certificate
    key: PrivateKey
    responder_cert: x509.Certificate | None = None
    responder_key: PrivateKey | None = None

    @property
    def name(self) -> str:
        return str(self.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class Card:
    """An issued end-entity certificate and its private key."""

    label: str
    cert: x509.Certificate
    key: PrivateKey
    issuer: Authority

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    def pkcs12(self, password: str) -> bytes:
        """A PKCS#12 'test card' a person can import into a browser (AES + PBKDF2)."""
        return pkcs12.serialize_key_and_certificates(
            self.label.encode(), self.key, self.cert, [self.issuer.cert],
            serialization.BestAvailableEncryption(password.encode()),
        )


@dataclass
class _Status:
    state: Literal["revoked", "unknown"]
    when: dt.datetime | None = None
    reason: x509.ReasonFlags | None = None


@dataclass
class SithsTestPKI:
    """The hierarchy, the issued certificates and the responder's knobs."""

    base_url: str
    root: Authority
    hsa_id_3: Authority
    person_id_3: Authority
    hsa_id_2: Authority
    function: Authority
    key_type: KeyType = "ec"
    clock: Callable[[], float] = time.time
    cards: dict[str, Card] = field(default_factory=dict)
    # Responder behaviour (tests change these).
    ocsp_mode: OcspMode = "normal"
    ocsp_signer: Literal["delegated", "ca"] = "delegated"
    crl_available: bool = True
    ocsp_validity: int = 300
    crl_validity: int = 3600
    ocsp_requests: int = 0
    crl_requests: int = 0
    _status: dict[tuple[str, int], _Status] = field(default_factory=dict)

    # --- lookups ------------------------------------------------------------------------
    @property
    def authorities(self) -> list[Authority]:
        return [self.root, self.hsa_id_3, self.person_id_3, self.hsa_id_2, self.function]

    @property
    def person_cas(self) -> list[Authority]:
        return [self.hsa_id_3, self.person_id_3, self.hsa_id_2]

    def authority(self, slug: str) -> Authority | None:
        return next((a for a in self.authorities if a.slug == slug), None)

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)

    def bundle_pem(self) -> bytes:
        """The `trust.ca_bundle`: root + person issuing CAs."""
        return b"".join(a.pem() for a in [self.root, *self.person_cas])

    def card(self, label: str) -> Card:
        return self.cards[label]

    # --- issuing ------------------------------------------------------------------------
    def issue_person(
        self,
        authority: Authority,
        *,
        label: str,
        given_name: str,
        surname: str,
        serial: str,
        signature: bool = False,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        eku: list[x509.ObjectIdentifier] | None = None,
        upn: str | None = None,
        key_type: KeyType | None = None,
    ) -> Card:
        """A person certificate with SITHS subject conventions; `signature=True` makes the
        nonRepudiation-only twin."""
        now = self.now()
        key = _key(key_type or self.key_type)
        subject = x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Testkommunen"),
            x509.NameAttribute(NameOID.GIVEN_NAME, given_name),
            x509.NameAttribute(NameOID.SURNAME, surname),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, serial),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{given_name} {surname}"),
        ])
        builder = self._ee_builder(authority, subject, key, not_before or now - dt.timedelta(days=30),
                                   not_after or now + dt.timedelta(days=730))
        if signature:
            builder = builder.add_extension(
                x509.KeyUsage(False, True, False, False, False, False, False, False, False), critical=True)
        else:
            builder = builder.add_extension(
                x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            builder = builder.add_extension(
                x509.ExtendedKeyUsage(eku or [ExtendedKeyUsageOID.CLIENT_AUTH, SMARTCARD_LOGON]),
                critical=False)
        if upn:
            value = b"\x0c" + bytes([len(upn.encode())]) + upn.encode()  # UTF8String
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.OtherName(UPN_OID, value)]), critical=False)
        card = Card(label, builder.sign(authority.key, hashes.SHA256()), key, authority)
        self.cards[label] = card
        return card

    def issue_server(self, label: str, hostnames: list[str]) -> Card:
        """A TLS server certificate from the Function CA (for direct mode / the demo host)."""
        now = self.now()
        key = _key(self.key_type)
        sans: list[x509.GeneralName] = []
        for host in hostnames:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
                             x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])])
        builder = (
            self._ee_builder(self.function, subject, key, now - dt.timedelta(days=1),
                             now + dt.timedelta(days=365))
            .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        )
        card = Card(label, builder.sign(self.function.key, hashes.SHA256()), key, self.function)
        self.cards[label] = card
        return card

    def _ee_builder(self, authority: Authority, subject: x509.Name, key: PrivateKey,
                    not_before: dt.datetime, not_after: dt.datetime) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(authority.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                authority.key.public_key()), critical=False)
            .add_extension(_aia(self.base_url, authority.slug), critical=False)
            .add_extension(_cdp(self.base_url, authority.slug), critical=False)
        )

    # --- responder knobs ----------------------------------------------------------------
    def revoke(self, card: Card | x509.Certificate, *, reason: x509.ReasonFlags = x509.ReasonFlags.key_compromise,
               when: dt.datetime | None = None) -> None:
        cert = card.cert if isinstance(card, Card) else card
        self._status[(_key_id(cert), cert.serial_number)] = _Status(
            "revoked", when or self.now() - dt.timedelta(minutes=1), reason)

    def make_unknown(self, card: Card | x509.Certificate) -> None:
        """OCSP answers "unknown" for this certificate (the CRL does not list it)."""
        cert = card.cert if isinstance(card, Card) else card
        self._status[(_key_id(cert), cert.serial_number)] = _Status("unknown")

    def reset(self) -> None:
        """Back to: everything good, responder and CRLs up, counters zero."""
        self._status.clear()
        self.ocsp_mode = "normal"
        self.ocsp_signer = "delegated"
        self.crl_available = True
        self.ocsp_validity = 300
        self.crl_validity = 3600
        self.ocsp_requests = 0
        self.crl_requests = 0

    def status_of(self, authority: Authority, serial: int) -> _Status | None:
        return self._status.get((_ski(authority.cert), serial))

    # --- answers ------------------------------------------------------------------------
    def authority_by_key_hash(self, key_hash: bytes) -> Authority | None:
        return next((a for a in self.authorities
                     if x509.SubjectKeyIdentifier.from_public_key(a.cert.public_key()).digest == key_hash),
                    None)

    def ocsp_response(self, request_der: bytes) -> bytes:
        """A signed OCSP response (DER) for one request, shaped by `ocsp_mode`."""
        request = ocsp.load_der_ocsp_request(request_der)
        if self.ocsp_mode == "trylater":
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.TRY_LATER).public_bytes(serialization.Encoding.DER)
        if request.hash_algorithm.name != "sha1":
            authority = None
        else:
            authority = self.authority_by_key_hash(request.issuer_key_hash)
        if authority is None:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(serialization.Encoding.DER)
        now = self.now()
        this_update = now - dt.timedelta(seconds=5)
        next_update = now + dt.timedelta(seconds=self.ocsp_validity)
        if self.ocsp_mode == "stale":
            this_update -= dt.timedelta(days=2)
            next_update = now - dt.timedelta(days=1)
        status = self.status_of(authority, request.serial_number)
        if status is None:
            cert_status, rev_time, rev_reason = ocsp.OCSPCertStatus.GOOD, None, None
        elif status.state == "revoked":
            cert_status, rev_time, rev_reason = ocsp.OCSPCertStatus.REVOKED, status.when, status.reason
        else:
            cert_status, rev_time, rev_reason = ocsp.OCSPCertStatus.UNKNOWN, None, None
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            request.issuer_name_hash, request.issuer_key_hash, request.serial_number,
            request.hash_algorithm, cert_status, this_update, next_update, rev_time, rev_reason)
        signer_cert, signer_key = self._ocsp_signer(authority)
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, signer_cert)
        if signer_cert is not authority.cert:
            builder = builder.certificates([signer_cert])
        nonce = _nonce(request)
        if nonce is not None:
            if self.ocsp_mode == "wrong-nonce":
                nonce = bytes(b ^ 0xFF for b in nonce)
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        return builder.sign(signer_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def _ocsp_signer(self, authority: Authority) -> tuple[x509.Certificate, PrivateKey]:
        if self.ocsp_mode == "foreign-signer":
            # A responder certificate that looks right but was not issued by the CA.
            key = _key("ec")
            cert = _responder_cert(authority.cert.subject, key, key, authority.name + " OCSP", self.now())
            return cert, key
        if self.ocsp_signer == "ca" or authority.responder_cert is None:
            return authority.cert, authority.key
        assert authority.responder_key is not None
        return authority.responder_cert, authority.responder_key

    def crl(self, authority: Authority) -> bytes:
        """A DER CRL for `authority` listing every certificate revoked so far."""
        now = self.now()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(authority.cert.subject)
            .last_update(now - dt.timedelta(seconds=5))
            .next_update(now + dt.timedelta(seconds=self.crl_validity))
            .add_extension(x509.CRLNumber(int(self.clock())), critical=False)
        )
        ski = _ski(authority.cert)
        for (key_id, serial), status in self._status.items():
            if key_id != ski or status.state != "revoked":
                continue
            entry = (x509.RevokedCertificateBuilder().serial_number(serial)
                     .revocation_date(status.when or now))
            if status.reason is not None:
                entry = entry.add_extension(x509.CRLReason(status.reason), critical=False)
            builder = builder.add_revoked_certificate(entry.build())
        return builder.sign(authority.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    # --- files --------------------------------------------------------------------------
    def write_files(self, directory: str | Path, password: str = "1234") -> dict[str, Path]:  # noqa: S107 - a test card
        """PEM files, keys and PKCS#12 test cards into `directory`; returns name -> path.

        `ca-bundle.pem` is the `trust.ca_bundle`; `<label>.p12` (password `password`) is a
        test card to import into a browser; `<label>.pem` / `<label>.key` for tools.
        """
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}

        def write(name: str, data: bytes, private: bool = False) -> None:
            path = out / name
            path.write_bytes(data)
            if private:
                path.chmod(0o600)
            paths[name] = path

        write("ca-bundle.pem", self.bundle_pem())
        for authority in self.authorities:
            write(f"{authority.slug}.pem", authority.pem())
        for label, card in self.cards.items():
            write(f"{label}.pem", card.pem())
            write(f"{label}.key", card.key_pem(), private=True)
            write(f"{label}-chain.pem", card.pem() + card.issuer.pem())
            write(f"{label}.p12", card.pkcs12(password), private=True)
        return paths


# --- building blocks ----------------------------------------------------------------------

def _ski(cert: x509.Certificate) -> bytes:
    return x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest


def _key_id(cert: x509.Certificate) -> bytes:
    """The issuing CA's key id from the certificate's AKI (our test certificates have one)."""
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier is not None
    return aki.key_identifier


def _nonce(request: ocsp.OCSPRequest) -> bytes | None:
    try:
        return request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        return None


def _aia(base_url: str, slug: str) -> x509.AuthorityInformationAccess:
    return x509.AuthorityInformationAccess([
        x509.AccessDescription(AuthorityInformationAccessOID.OCSP,
                               x509.UniformResourceIdentifier(f"{base_url}/ocsp")),
        x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS,
                               x509.UniformResourceIdentifier(f"{base_url}/ca/{slug}.cer")),
    ])


def _cdp(base_url: str, slug: str) -> x509.CRLDistributionPoints:
    return x509.CRLDistributionPoints([x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(f"{base_url}/crl/{slug}.crl")],
        relative_name=None, reasons=None, crl_issuer=None)])


def _ca_cert(cn: str, key: PrivateKey, issuer: Authority | None, base_url: str,
             now: dt.datetime, parent_slug: str = "root") -> x509.Certificate:
    name = _ca_name(cn)
    signing_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=365))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None if issuer is None else 0),
                       critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                       critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()),
                       critical=False)
    )
    if issuer is not None:
        builder = (builder.add_extension(_aia(base_url, parent_slug), critical=False)
                   .add_extension(_cdp(base_url, parent_slug), critical=False))
    return builder.sign(signing_key, hashes.SHA256())


def _responder_cert(issuer_name: x509.Name, issuer_key: PrivateKey, key: PrivateKey, cn: str,
                    now: dt.datetime) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(_ca_name(cn))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                       critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        .add_extension(x509.OCSPNoCheck(), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )


def _authority(slug: str, cn: str, parent: Authority | None, base_url: str, key_type: KeyType,
               now: dt.datetime, responder: bool = True) -> Authority:
    key = _key(key_type)
    cert = _ca_cert(cn, key, parent, base_url, now)
    authority = Authority(slug, cert, key)
    if responder:
        rkey = _key(key_type)
        authority.responder_cert = _responder_cert(cert.subject, key, rkey, f"{cn} OCSP", now)
        authority.responder_key = rkey
    return authority


def create_test_pki(base_url: str = "http://127.0.0.1:8099", *, prefix: str = "TEST ",
                    key_type: KeyType = "ec", clock: Callable[[], float] = time.time,
                    people: bool = True) -> SithsTestPKI:
    """Make the hierarchy and (with `people`) the standard test cards:

    - `anna-hsa` / `anna-hsa-sign`: Anna Andersson, HSA-id SE2321000016-1234 (HSA-id 3 CA)
    - `anna-pnr` / `anna-pnr-sign`: Anna Andersson, personnummer 199001012385 (ID 3 CA)
    - `bertil-reserve`: Bertil Berg, SE2321000016-5678 on a reserve card (HSA-id 2 CA)
    """
    base_url = base_url.rstrip("/")
    now = dt.datetime.fromtimestamp(clock(), dt.UTC)
    root = _authority("root", f"{prefix}SITHS e-id Root CA v2", None, base_url, key_type, now)
    pki = SithsTestPKI(
        base_url=base_url,
        root=root,
        hsa_id_3=_authority("hsaid3", f"{prefix}SITHS e-id Person HSA-id 3 CA v1", root, base_url,
                            key_type, now),
        person_id_3=_authority("id3", f"{prefix}SITHS e-id Person ID 3 CA v1", root, base_url,
                               key_type, now),
        hsa_id_2=_authority("hsaid2", f"{prefix}SITHS e-id Person HSA-id 2 CA v1", root, base_url,
                            key_type, now),
        function=_authority("function", f"{prefix}SITHS e-id Function CA v1", root, base_url,
                            key_type, now, responder=False),
        key_type=key_type,
        clock=clock,
    )
    if people:
        anna = {"given_name": "Anna", "surname": "Andersson"}
        pki.issue_person(pki.hsa_id_3, label="anna-hsa", serial="SE2321000016-1234",
                         upn="SE2321000016-1234@test.siths.example", **anna)
        pki.issue_person(pki.hsa_id_3, label="anna-hsa-sign", serial="SE2321000016-1234",
                         signature=True, **anna)
        pki.issue_person(pki.person_id_3, label="anna-pnr", serial="199001012385", **anna)
        pki.issue_person(pki.person_id_3, label="anna-pnr-sign", serial="199001012385",
                         signature=True, **anna)
        pki.issue_person(pki.hsa_id_2, label="bertil-reserve", serial="SE2321000016-5678",
                         given_name="Bertil", surname="Berg")
    return pki


# --- the responder app --------------------------------------------------------------------

def create_pki_app(pki: SithsTestPKI) -> Any:
    """A Starlette app serving OCSP (POST /ocsp, GET /ocsp/{b64}), CRLs (GET /crl/{slug}.crl)
    and CA certificates (GET /ca/{slug}.cer) for `pki`, following its knobs."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    def ocsp_answer(body: bytes) -> Response:
        pki.ocsp_requests += 1
        if pki.ocsp_mode == "down":
            return Response("responder down", status_code=503)
        try:
            der = pki.ocsp_response(body)
        except ValueError:
            der = ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.MALFORMED_REQUEST).public_bytes(serialization.Encoding.DER)
        return Response(der, media_type="application/ocsp-response")

    async def ocsp_post(request: Request) -> Response:
        return ocsp_answer(await request.body())

    async def ocsp_get(request: Request) -> Response:
        raw = request.path_params["encoded"]
        try:
            body = base64.b64decode(raw + "=" * (-len(raw) % 4))
        except ValueError:
            return Response("bad request", status_code=400)
        return ocsp_answer(body)

    async def crl(request: Request) -> Response:
        pki.crl_requests += 1
        if not pki.crl_available:
            return Response("CRL endpoint down", status_code=503)
        authority = pki.authority(request.path_params["slug"])
        if authority is None:
            return Response("no such CA", status_code=404)
        return Response(pki.crl(authority), media_type="application/pkix-crl")

    async def ca(request: Request) -> Response:
        authority = pki.authority(request.path_params["slug"])
        if authority is None:
            return Response("no such CA", status_code=404)
        return Response(authority.cert.public_bytes(serialization.Encoding.DER),
                        media_type="application/pkix-cert")

    return Starlette(routes=[
        Route("/ocsp", ocsp_post, methods=["POST"]),
        Route("/ocsp/{encoded:path}", ocsp_get, methods=["GET"]),
        Route("/crl/{slug}.crl", crl, methods=["GET"]),
        Route("/ca/{slug}.cer", ca, methods=["GET"]),
    ])
