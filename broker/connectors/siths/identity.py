"""From a validated SITHS certificate to the broker's `Identity`.

Subject conventions (reference §2.2): the HSA-id certificate (issuer "... Person HSA-id n
CA") has the HSA-id in subject `serialNumber`; the Person ID certificate ("... Person ID n
CA") has the 12-digit personnummer there. The personnummer is never in the HSA-id
certificate, so an HSA-id login yields `hsa_id` only (HSA or the authorization source links
the two). Names come from `givenName`, `surname` and `CN`.

acr: the level of assurance of the issuing CA (LoA 3 ordinary cards, LoA 2 reserve cards).
amr: `["sc", "hwk", "pin"]` (RFC 8176: smart card, hardware-protected key, PIN), the
reference's proposal (§8.3) - the card's private key only signs after the PIN.

Claims (Swedish OIDC profile): `https://id.oidc.se/claim/userCertificate` (base64 DER),
`https://id.oidc.se/claim/credentialValidFrom` / `credentialValidTo` (seconds since epoch).
Evidence (audit only): issuer, serial, SHA-256 fingerprint, subject, policies and where the
revocation answer came from.
"""

from __future__ import annotations

import base64
import datetime as dt
import re

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from ...identifiers import IdentifierError, check_hsa_id, check_personal_number
from ..base import Identity
from .revocation import RevocationStatus
from .validation import Outcome, SithsLoginFailure, ValidatedCertificate

METHOD = "siths"
AMR = ("sc", "hwk", "pin")
CLAIM_USER_CERTIFICATE = "https://id.oidc.se/claim/userCertificate"
CLAIM_VALID_FROM = "https://id.oidc.se/claim/credentialValidFrom"
CLAIM_VALID_TO = "https://id.oidc.se/claim/credentialValidTo"

# TEST SITHS identities look like TSTNMT2321000156-1024 (reference §2.3).
_TEST_HSA = re.compile(r"^TSTNMT\d{10}-[A-Za-z0-9]{1,31}$")


def _attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    attrs = name.get_attributes_for_oid(oid)
    if not attrs:
        return None
    value = attrs[0].value
    value = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return value.strip() or None


def hsa_id_of(value: str) -> str:
    """The HSA-id in the broker's normal form; test-environment ids (TSTNMT...) pass too."""
    v = value.strip()
    if _TEST_HSA.match(v):
        return v.upper()
    return check_hsa_id(v)


def _policies(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    except x509.ExtensionNotFound:
        return []
    return [p.policy_identifier.dotted_string for p in ext]


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def identity_from_certificate(validated: ValidatedCertificate, revocation: RevocationStatus,
                              *, auth_time: int) -> Identity:
    """The Identity of a validated (and revocation-checked) card certificate.

    Raises SithsLoginFailure(UNTRUSTED) when the subject serialNumber is not the identifier
    the issuing CA's family promises: a trusted CA that breaks its own profile is not to be
    guessed around.
    """
    leaf = validated.leaf
    subject = leaf.subject
    serial_attr = _attr(subject, NameOID.SERIAL_NUMBER) or ""
    hsa_id = pnr = None
    try:
        if validated.family == "hsa-id":
            hsa_id = hsa_id_of(serial_attr)
        else:
            today = dt.datetime.fromtimestamp(auth_time, dt.UTC).date()
            pnr = check_personal_number(serial_attr, today=today)
    except IdentifierError as exc:
        raise SithsLoginFailure(
            Outcome.UNTRUSTED,
            f"serial={leaf.serial_number:x}: subject serialNumber does not fit {validated.family}: {exc}",
        ) from None

    given = _attr(subject, NameOID.GIVEN_NAME)
    family = _attr(subject, NameOID.SURNAME)
    cn = _attr(subject, NameOID.COMMON_NAME)
    name = cn or " ".join(p for p in (given, family) if p) or None

    der = leaf.public_bytes(Encoding.DER)
    claims = {
        CLAIM_USER_CERTIFICATE: base64.b64encode(der).decode("ascii"),
        CLAIM_VALID_FROM: int(leaf.not_valid_before_utc.timestamp()),
        CLAIM_VALID_TO: int(leaf.not_valid_after_utc.timestamp()),
    }
    evidence = {
        "issuer": leaf.issuer.rfc4514_string(),
        "issuer_cn": validated.issuer_name,
        "serial": f"{leaf.serial_number:x}",
        "sha256": fingerprint(leaf),
        "subject": subject.rfc4514_string(),
        "certificate_family": validated.family,
        "loa_level": validated.level,
        "reserve_card": validated.reserve_card,
        "policies": _policies(leaf),
        "organization": _attr(subject, NameOID.ORGANIZATION_NAME),
        "certificate_source": validated.source,
        "revocation": revocation.evidence(),
    }
    return Identity(
        method=METHOD,
        acr=validated.acr,
        amr=AMR,
        auth_time=auth_time,
        personal_identity_number=pnr,
        hsa_id=hsa_id,
        given_name=given,
        family_name=family,
        name=name,
        claims=claims,
        evidence=evidence,
    )
