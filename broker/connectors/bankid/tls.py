"""Mutual TLS for the RP API: our RP certificate out, BankID's pinned root in.

BankID's server certificates chain to BankID's own private roots, so the OS trust store is
never used: a certificate from any public CA, or from the other BankID environment, is
refused. The bundled roots are checked against their published fingerprints every time
they are loaded, so an edited PEM cannot widen trust unnoticed.
"""

from __future__ import annotations

import os
import secrets
import ssl
import tempfile
from importlib import resources
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

ROOT_FINGERPRINTS = {
    "test": "F3:D0:74:0E:BF:B3:70:0E:3B:81:AA:79:1F:EE:45:14:72:69:8C:84:E1:99:C2:EB:48:A4:43:FF:1D:5B:40:5C",
    "production": "E6:A2:D4:5C:0A:10:51:C9:59:42:86:49:F8:6A:09:A9:B2:15:2C:D5:51:99:3C:C2:EB:4C:F0:94:BD:AC:BE:CB",
}
_ROOT_FILES = {
    "test": "bankid-test-root-ca.pem",
    "production": "bankid-production-root-ca.pem",
}


class TLSConfigError(Exception):
    """The RP certificate or the server root cannot be used; the message says which file."""


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint in OpenSSL's colon form (as BankID publishes them)."""
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def bundled_root(environment: str) -> str:
    """The PEM of BankID's SSL root for `environment`, after checking its fingerprint."""
    name = _ROOT_FILES.get(environment)
    if name is None:
        raise TLSConfigError(f"no bundled BankID root for environment {environment!r}")
    try:
        pem = resources.files(__package__).joinpath("certs", name).read_text("ascii")
    except (FileNotFoundError, OSError):
        raise TLSConfigError(
            f"the bundled BankID root {name} is missing; set connectors.bankid.ca_file"
        ) from None
    cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    if fingerprint(cert) != ROOT_FINGERPRINTS[environment]:
        raise TLSConfigError(f"the bundled BankID root {name} does not have the pinned fingerprint")
    return pem


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TLSConfigError(f"{what} {path}: cannot read ({exc.strerror})") from None


def load_rp_identity(
    *,
    p12: Path | None = None,
    cert: Path | None = None,
    key: Path | None = None,
    password: str | None = None,
) -> tuple[bytes, PrivateKey]:
    """Read the RP certificate chain and private key (PKCS#12, or PEM with optional password).

    Returns (PEM chain, private key). Errors name the file but never the password.
    """
    pw = password.encode("utf-8") if password else None
    if p12 is not None:
        data = _read(p12, "certificate.p12")
        try:
            private_key, leaf, extra = pkcs12.load_key_and_certificates(data, pw)
        except ValueError:
            raise TLSConfigError(
                f"certificate.p12 {p12}: cannot open (wrong password, or not a PKCS#12 file)"
            ) from None
        if private_key is None or leaf is None:
            raise TLSConfigError(f"certificate.p12 {p12}: holds no certificate with a private key")
        chain = [leaf, *extra]
    else:
        assert cert is not None and key is not None
        try:
            chain = x509.load_pem_x509_certificates(_read(cert, "certificate.cert"))
        except ValueError:
            raise TLSConfigError(f"certificate.cert {cert}: not a PEM certificate") from None
        try:
            private_key = serialization.load_pem_private_key(_read(key, "certificate.key"), pw)
        except (ValueError, TypeError):
            raise TLSConfigError(
                f"certificate.key {key}: cannot open (wrong or missing password, or not a PEM key)"
            ) from None
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    return pem, private_key  # type: ignore[return-value]


def client_context(
    *,
    ca_pem: str,
    chain_pem: bytes,
    private_key: PrivateKey,
) -> ssl.SSLContext:
    """An SSLContext that presents our RP certificate and trusts only `ca_pem`.

    `ssl` can only load a key from a file, so the key is written re-encrypted under a
    throwaway password to a private temporary directory and removed at once: the plain
    key never touches the disk.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        ctx.load_verify_locations(cadata=ca_pem)
    except ssl.SSLError:
        raise TLSConfigError("the BankID root CA is not a valid PEM certificate") from None
    throwaway = secrets.token_urlsafe(32).encode("ascii")
    key_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(throwaway),
    )
    with tempfile.TemporaryDirectory(prefix="bankid-rp-") as tmp:
        os.chmod(tmp, 0o700)
        cert_path = Path(tmp, "cert.pem")
        key_path = Path(tmp, "key.pem")
        cert_path.write_bytes(chain_pem)
        key_path.write_bytes(key_pem)
        os.chmod(key_path, 0o600)
        try:
            ctx.load_cert_chain(cert_path, key_path, password=throwaway)
        except ssl.SSLError as exc:
            raise TLSConfigError(f"the RP certificate and key do not match ({exc.reason})") from None
    return ctx


def context_from_settings(settings: object, base_dir: Path | None = None) -> ssl.SSLContext:
    """Build the mutual-TLS context for `connectors.bankid` (test or production).

    Paths are relative to `base_dir` (the config file's directory).
    """
    from .settings import BankIDSettings

    assert isinstance(settings, BankIDSettings)
    base = base_dir or Path.cwd()

    def path(value: str | None) -> Path | None:
        if value is None:
            return None
        p = Path(value)
        return p if p.is_absolute() else base / p

    if settings.ca_file:
        ca_path = path(settings.ca_file)
        assert ca_path is not None
        ca_pem = _read(ca_path, "ca_file").decode("ascii", "replace")
    else:
        ca_pem = bundled_root(settings.environment)
    rp = settings.certificate
    if rp is None:
        raise TLSConfigError("certificate: the RP certificate is required for mutual TLS")
    chain, key = load_rp_identity(
        p12=path(rp.p12),
        cert=path(rp.cert),
        key=path(rp.key),
        password=rp.password.get_secret_value() if rp.password else None,
    )
    return client_context(ca_pem=ca_pem, chain_pem=chain, private_key=key)
