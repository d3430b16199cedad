"""Throwaway keys for a conformance run, made once into a directory (not kept in git).

    python keys.py DIR

  tls.crt, tls.key                  self-signed RSA certificate for localhost,
                                    localhost.emobix.co.uk and 127.0.0.1 (nginx fronts)
  pkj1.private.jwks.json, pkj1.public.jwks.json, and the same for pkj2
                                    the suite's private_key_jwt clients (kid oidf-pkj1/2)

Run with the project's virtual environment (it has `cryptography` and `joserfc`).
Existing files are kept, so the suite and the broker agree across runs.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from joserfc.jwk import RSAKey


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    os.chmod(path, 0o600)


def tls(directory: Path) -> None:
    if (directory / "tls.crt").exists() and (directory / "tls.key").exists():
        return
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.DNSName("localhost.emobix.co.uk"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(directory / "tls.key", key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))
    (directory / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def client_keys(directory: Path, name: str) -> None:
    private, public = directory / f"{name}.private.jwks.json", directory / f"{name}.public.jwks.json"
    if private.exists() and public.exists():
        return
    key = RSAKey.generate_key(2048, {"kid": f"oidf-{name}", "alg": "RS256", "use": "sig"})
    _write(private, json.dumps({"keys": [key.as_dict(private=True)]}, indent=1).encode())
    public.write_text(json.dumps({"keys": [key.as_dict(private=False)]}, indent=1))


def main(directory: str) -> int:
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tls(out)
    for name in ("pkj1", "pkj2"):
        client_keys(out, name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
