"""Path validation and certificate-family checks, always done in the app.

Whatever the proxy says (`ssl-client-verify: SUCCESS`) the app verifies again: the header is
the only contract between the two, and the proxy's trust list may be wider than ours.

`cryptography.x509.verification` builds the path against the pinned SITHS store (the roots
in `ca_bundle`), with the presented chain plus the bundle's issuing CAs as intermediates. It
does not check KeyUsage, requires a SAN by default and rejects an EKU without clientAuth
(reference §6.1), so the end-entity policy here lets SAN and EKU through and we check them
ourselves: that way a signature certificate ("underskrift", nonRepudiation only) is told
apart from a foreign one and gets the "wrong certificate" message, which tells the person to
pick the other certificate on the card.

Level of assurance comes from the issuing CA's name (reference §0.5): HSA-id 3 / ID 3 (and
ID Mobile) give LoA 3, the reserve-card CAs HSA-id 2 / ID 2 give LoA 2.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from ..base import LOA2, LOA3, LoginFailure
from .intake import PresentedCertificate
from .settings import TrustSettings, classify_issuer

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    """Why a SITHS login failed; the value is the `LoginFailure.code` (picks the page)."""

    NO_CERTIFICATE = "siths_no_certificate"
    UNTRUSTED = "siths_untrusted"
    EXPIRED = "siths_expired"  # also "not yet valid": outside the validity period
    REVOKED = "siths_revoked"
    REVOCATION_UNKNOWN = "siths_revocation_unknown"
    WRONG_CERTIFICATE = "siths_wrong_certificate"  # signature cert, or the other family
    RESERVE_NOT_ALLOWED = "siths_reserve_not_allowed"


class SithsLoginFailure(LoginFailure):
    """A LoginFailure with a typed outcome; `detail` is for the log, never shown."""

    def __init__(self, outcome: Outcome, detail: str = "") -> None:
        super().__init__(outcome.value, detail)
        self.outcome = outcome


@dataclass(frozen=True)
class TrustAnchors:
    """The pinned trust store: roots (self-signed) and the issuing CAs we ship."""

    roots: tuple[x509.Certificate, ...]
    issuing: tuple[x509.Certificate, ...]

    @classmethod
    def from_pem(cls, data: bytes, *, source: str = "ca_bundle") -> TrustAnchors:
        try:
            certs = x509.load_pem_x509_certificates(data)
        except ValueError:
            raise ValueError(f"{source}: holds no PEM certificates") from None
        roots, issuing = [], []
        for cert in certs:
            if not _is_ca(cert):
                raise ValueError(f"{source}: {_cn(cert.subject)!r} is not a CA certificate")
            (roots if _self_signed(cert) else issuing).append(cert)
        if not roots:
            raise ValueError(f"{source}: holds no root (self-signed) CA certificate to pin")
        return cls(tuple(roots), tuple(issuing))

    @classmethod
    def load(cls, path: str | Path) -> TrustAnchors:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ValueError(f"{path}: cannot read the CA bundle ({exc.strerror})") from None
        return cls.from_pem(data, source=str(path))


@dataclass(frozen=True)
class ValidatedCertificate:
    """A leaf that chains to the pinned store and passed the family checks."""

    leaf: x509.Certificate
    issuer: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # leaf first, root last
    family: str  # "hsa-id" | "person-id"
    level: int  # 3 ordinary cards, 2 reserve cards
    issuer_name: str  # CN of the issuing CA
    source: str = "tls"

    @property
    def acr(self) -> str:
        return LOA3 if self.level >= 3 else LOA2

    @property
    def reserve_card(self) -> bool:
        return self.level == 2


def _cn(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else name.rfc4514_string()


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _self_signed(cert: x509.Certificate) -> bool:
    if cert.subject != cert.issuer:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _ee_policy() -> ExtensionPolicy:
    # SAN optional (SITHS person certs need not have one); EKU checked by us, below.
    return (
        ExtensionPolicy.webpki_defaults_ee()
        .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
        .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None)
    )


class CertificateValidator:
    """Checks one presented certificate against the pinned store and our policy."""

    def __init__(self, trust: TrustAnchors, settings: TrustSettings) -> None:
        self._trust = trust
        self._store = Store(list(trust.roots))
        self._allow_reserve = settings.allow_reserve_cards
        names = settings.issuers
        if names is None:
            names = [_cn(c.subject) for c in trust.issuing if classify_issuer(_cn(c.subject))]
        self._allowed: dict[str, tuple[str, int]] = {}
        for name in names:
            kind = classify_issuer(name)
            if kind is not None:
                self._allowed[name] = kind
        if not self._allowed:
            log.warning("no SITHS e-id person issuing CA is allowed: every SITHS login will fail")

    @property
    def allowed_issuers(self) -> dict[str, tuple[str, int]]:
        return dict(self._allowed)

    def validate(self, presented: PresentedCertificate | None, now: dt.datetime) -> ValidatedCertificate:
        """The validated certificate, or raise SithsLoginFailure with the outcome."""
        if presented is None:
            raise SithsLoginFailure(Outcome.NO_CERTIFICATE, "no client certificate presented")
        leaf = presented.leaf
        ref = f"serial={leaf.serial_number:x}"
        if now < leaf.not_valid_before_utc:
            raise SithsLoginFailure(Outcome.EXPIRED, f"{ref}: not valid before {leaf.not_valid_before_utc}")
        if now > leaf.not_valid_after_utc:
            raise SithsLoginFailure(Outcome.EXPIRED, f"{ref}: expired {leaf.not_valid_after_utc}")

        intermediates = [c for c in presented.chain if c != leaf] + list(self._trust.issuing)
        verifier = (
            PolicyBuilder()
            .store(self._store)
            .time(now)
            .extension_policies(ee_policy=_ee_policy(), ca_policy=ExtensionPolicy.webpki_defaults_ca())
            .build_client_verifier()
        )
        try:
            verified = verifier.verify(leaf, intermediates)
        except VerificationError as exc:
            raise SithsLoginFailure(Outcome.UNTRUSTED, f"{ref}: {exc}") from None
        chain = tuple(verified.chain)
        if len(chain) < 2:
            raise SithsLoginFailure(Outcome.UNTRUSTED, f"{ref}: a root is not a person certificate")
        issuer = chain[1]
        issuer_name = _cn(issuer.subject)

        kind = self._allowed.get(issuer_name)
        if kind is None:
            outcome = Outcome.WRONG_CERTIFICATE if classify_issuer(issuer_name) else Outcome.UNTRUSTED
            raise SithsLoginFailure(outcome, f"{ref}: issuer {issuer_name!r} not accepted here")
        family, level = kind
        if level < 3 and not self._allow_reserve:
            raise SithsLoginFailure(Outcome.RESERVE_NOT_ALLOWED, f"{ref}: reserve card ({issuer_name})")

        _check_usage(leaf, ref)
        if not leaf.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER):
            raise SithsLoginFailure(Outcome.WRONG_CERTIFICATE, f"{ref}: no subject serialNumber")
        return ValidatedCertificate(
            leaf=leaf, issuer=issuer, chain=chain, family=family, level=level,
            issuer_name=issuer_name, source=presented.source,
        )


def _check_usage(leaf: x509.Certificate, ref: str) -> None:
    """An authentication ("legitimering") certificate: digitalSignature, clientAuth if EKU."""
    try:
        ku = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise SithsLoginFailure(Outcome.WRONG_CERTIFICATE, f"{ref}: no KeyUsage") from None
    if not ku.digital_signature:
        what = "signature certificate (nonRepudiation)" if ku.content_commitment else "no digitalSignature"
        raise SithsLoginFailure(Outcome.WRONG_CERTIFICATE, f"{ref}: {what}")
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return
    if ExtendedKeyUsageOID.CLIENT_AUTH not in eku and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in eku:
        raise SithsLoginFailure(Outcome.WRONG_CERTIFICATE, f"{ref}: EKU without clientAuth")
