"""SITHS e-id card login: certificate intake, path validation, revocation, identity.

The login pages (on the dedicated mTLS host) use `SithsAuthenticator`:
`certificate(scope)` reads the certificate (trusted-proxy header or direct TLS),
`authenticate(presented)` returns an `Identity` or raises `SithsLoginFailure`.

Direct-mode names (`direct_server_config`, `build_server_ssl_context`, `http_protocol`) are
imported lazily from `direct.py`, because that module refuses to import with an untested
uvicorn and proxy mode must not depend on it.
"""

from __future__ import annotations

from typing import Any

from .authenticator import SithsAuthenticator
from .identity import (
    AMR,
    CLAIM_USER_CERTIFICATE,
    CLAIM_VALID_FROM,
    CLAIM_VALID_TO,
    identity_from_certificate,
)
from .intake import (
    CertificateDecodeError,
    PresentedCertificate,
    certificate_from_headers,
    certificate_from_scope,
    decode_header,
    presented_certificate,
)
from .revocation import RevocationChecker, RevocationStatus
from .settings import SithsSettings, classify_issuer
from .validation import (
    CertificateValidator,
    Outcome,
    SithsLoginFailure,
    TrustAnchors,
    ValidatedCertificate,
)

_DIRECT = ("build_server_ssl_context", "direct_server_config", "http_protocol", "UnsupportedUvicorn")

__all__ = [
    "AMR",
    "CLAIM_USER_CERTIFICATE",
    "CLAIM_VALID_FROM",
    "CLAIM_VALID_TO",
    "CertificateDecodeError",
    "CertificateValidator",
    "Outcome",
    "PresentedCertificate",
    "RevocationChecker",
    "RevocationStatus",
    "SithsAuthenticator",
    "SithsLoginFailure",
    "SithsSettings",
    "TrustAnchors",
    "UnsupportedUvicorn",
    "ValidatedCertificate",
    "build_server_ssl_context",
    "certificate_from_headers",
    "certificate_from_scope",
    "classify_issuer",
    "decode_header",
    "direct_server_config",
    "http_protocol",
    "identity_from_certificate",
    "presented_certificate",
]


def __getattr__(name: str) -> Any:
    if name in _DIRECT:
        from . import direct

        return getattr(direct, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
