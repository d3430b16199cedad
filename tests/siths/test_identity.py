"""Identity extraction from HSA-id and Person ID certificates."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from broker.connectors.base import LOA3, Identity
from broker.connectors.siths import (
    CLAIM_USER_CERTIFICATE,
    CLAIM_VALID_FROM,
    CLAIM_VALID_TO,
    CertificateValidator,
    Outcome,
    PresentedCertificate,
    RevocationStatus,
    SithsLoginFailure,
    TrustAnchors,
    identity_from_certificate,
)
from broker.connectors.siths.settings import TrustSettings
from broker.connectors.siths.testpki import create_test_pki

NOW = dt.datetime.now(dt.UTC)
GOOD = RevocationStatus("good", "ocsp", int(NOW.timestamp()), this_update=1, next_update=2)


@pytest.fixture(scope="module")
def local_pki():
    return create_test_pki("http://pki.test")


def identity_of(pki, card) -> Identity:
    v = CertificateValidator(TrustAnchors.from_pem(pki.bundle_pem()),
                             TrustSettings(ca_bundle="x", allow_reserve_cards=True))
    validated = v.validate(PresentedCertificate(card.cert, (), "header:nginx"), NOW)
    return identity_from_certificate(validated, GOOD, auth_time=int(NOW.timestamp()))


def test_hsa_id_certificate(local_pki):
    card = local_pki.card("anna-hsa")
    ident = identity_of(local_pki, card)
    assert ident.method == "siths"
    assert ident.hsa_id == "SE2321000016-1234"
    assert ident.personal_identity_number is None  # never in the HSA-id certificate
    assert (ident.given_name, ident.family_name, ident.name) == ("Anna", "Andersson", "Anna Andersson")
    assert ident.acr == LOA3
    assert ident.amr == ("sc", "hwk", "pin")
    assert base64.b64decode(ident.claims[CLAIM_USER_CERTIFICATE]) == card.cert.public_bytes(Encoding.DER)
    assert ident.claims[CLAIM_VALID_FROM] == int(card.cert.not_valid_before_utc.timestamp())
    assert ident.claims[CLAIM_VALID_TO] == int(card.cert.not_valid_after_utc.timestamp())
    ev = ident.evidence
    assert ev["issuer_cn"] == "TEST SITHS e-id Person HSA-id 3 CA v1"
    assert ev["serial"] == f"{card.cert.serial_number:x}"
    assert len(ev["sha256"]) == 64
    assert ev["revocation"]["source"] == "ocsp" and ev["revocation"]["status"] == "good"
    assert ev["certificate_source"] == "header:nginx"
    # survives the store round trip the provider does
    assert Identity.from_record(ident.to_record()) == ident


def test_person_id_certificate(local_pki):
    ident = identity_of(local_pki, local_pki.card("anna-pnr"))
    assert ident.personal_identity_number == "199001012385"
    assert ident.hsa_id is None
    assert ident.name == "Anna Andersson"


def test_reserve_card_identity_is_loa2(local_pki):
    ident = identity_of(local_pki, local_pki.card("bertil-reserve"))
    assert ident.hsa_id == "SE2321000016-5678"
    assert ident.acr.endswith("loa2")
    assert ident.evidence["reserve_card"] is True


def test_test_environment_hsa_id_accepted(local_pki):
    card = local_pki.issue_person(local_pki.hsa_id_3, label="tst", given_name="T", surname="St",
                                  serial="TSTNMT2321000156-1024")
    assert identity_of(local_pki, card).hsa_id == "TSTNMT2321000156-1024"


@pytest.mark.parametrize(("ca", "serial"), [("hsa_id_3", "199001012385"), ("person_id_3", "SE2321000016-1234"),
                                            ("person_id_3", "199001012386")])
def test_serial_number_not_matching_family_refused(local_pki, ca, serial):
    card = local_pki.issue_person(getattr(local_pki, ca), label="odd", given_name="O", surname="Dd",
                                  serial=serial)
    with pytest.raises(SithsLoginFailure) as info:
        identity_of(local_pki, card)
    assert info.value.outcome == Outcome.UNTRUSTED
    assert serial not in info.value.detail  # the detail may be logged
