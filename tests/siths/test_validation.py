"""Path validation, certificate family, validity and level of assurance (no network)."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from broker.connectors.base import LOA2, LOA3, LoginFailure
from broker.connectors.siths import (
    CertificateValidator,
    Outcome,
    PresentedCertificate,
    SithsLoginFailure,
    TrustAnchors,
)
from broker.connectors.siths.settings import TrustSettings
from broker.connectors.siths.testpki import SithsTestPKI, create_test_pki

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def local_pki() -> SithsTestPKI:
    return create_test_pki("http://pki.test")


def validator(pki: SithsTestPKI, **trust) -> CertificateValidator:
    settings = TrustSettings(ca_bundle="unused", **trust)
    return CertificateValidator(TrustAnchors.from_pem(pki.bundle_pem()), settings)


def presented(card, *chain) -> PresentedCertificate:
    return PresentedCertificate(card.cert, tuple(chain), "header:nginx")


def outcome_of(v: CertificateValidator, p: PresentedCertificate | None, now=NOW) -> Outcome:
    with pytest.raises(SithsLoginFailure) as info:
        v.validate(p, now)
    assert isinstance(info.value, LoginFailure)
    assert info.value.code == info.value.outcome.value
    return info.value.outcome


def test_good_hsa_id_certificate_loa3(local_pki):
    got = validator(local_pki).validate(presented(local_pki.card("anna-hsa")), NOW)
    assert got.family == "hsa-id"
    assert got.level == 3 and got.acr == LOA3 and not got.reserve_card
    assert got.issuer == local_pki.hsa_id_3.cert
    assert got.chain[-1] == local_pki.root.cert
    assert got.issuer_name == "TEST SITHS e-id Person HSA-id 3 CA v1"


def test_good_person_id_certificate(local_pki):
    got = validator(local_pki).validate(presented(local_pki.card("anna-pnr")), NOW)
    assert got.family == "person-id" and got.acr == LOA3


def test_no_certificate(local_pki):
    assert outcome_of(validator(local_pki), None) == Outcome.NO_CERTIFICATE


def test_expired(local_pki):
    card = local_pki.issue_person(local_pki.hsa_id_3, label="old", given_name="O", surname="Ld",
                                  serial="SE2321000016-0001",
                                  not_before=NOW - dt.timedelta(days=800),
                                  not_after=NOW - dt.timedelta(days=1))
    assert outcome_of(validator(local_pki), presented(card)) == Outcome.EXPIRED


def test_not_yet_valid(local_pki):
    card = local_pki.issue_person(local_pki.hsa_id_3, label="future", given_name="F", surname="Ut",
                                  serial="SE2321000016-0002",
                                  not_before=NOW + dt.timedelta(days=3))
    assert outcome_of(validator(local_pki), presented(card)) == Outcome.EXPIRED
    # ... and it is fine once its time has come
    later = NOW + dt.timedelta(days=4)
    assert validator(local_pki).validate(presented(card), later).family == "hsa-id"


def test_signature_certificate_is_wrong_certificate(local_pki):
    v = validator(local_pki)
    assert outcome_of(v, presented(local_pki.card("anna-hsa-sign"))) == Outcome.WRONG_CERTIFICATE
    assert outcome_of(v, presented(local_pki.card("anna-pnr-sign"))) == Outcome.WRONG_CERTIFICATE


def test_eku_without_client_auth_is_wrong_certificate(local_pki):
    card = local_pki.issue_person(local_pki.hsa_id_3, label="mail", given_name="M", surname="Ail",
                                  serial="SE2321000016-0003",
                                  eku=[ExtendedKeyUsageOID.EMAIL_PROTECTION])
    assert outcome_of(validator(local_pki), presented(card)) == Outcome.WRONG_CERTIFICATE


def test_foreign_ca_with_same_names_is_untrusted(local_pki):
    foreign = create_test_pki("http://evil.test")
    card = foreign.card("anna-hsa")
    v = validator(local_pki)
    # even when the attacker sends their own intermediate along
    assert outcome_of(v, presented(card, foreign.hsa_id_3.cert)) == Outcome.UNTRUSTED
    assert outcome_of(v, presented(card, foreign.hsa_id_3.cert, foreign.root.cert)) == Outcome.UNTRUSTED


def test_function_ca_certificate_is_untrusted_even_when_chained(local_pki):
    server = local_pki.issue_server("srv", ["localhost"])
    bundle = local_pki.bundle_pem() + local_pki.function.pem()
    v = CertificateValidator(TrustAnchors.from_pem(bundle), TrustSettings(ca_bundle="x"))
    assert outcome_of(v, presented(server)) == Outcome.UNTRUSTED


def test_reserve_card_refused_by_default(local_pki):
    assert outcome_of(validator(local_pki), presented(local_pki.card("bertil-reserve"))) == \
        Outcome.RESERVE_NOT_ALLOWED


def test_reserve_card_allowed_is_loa2(local_pki):
    got = validator(local_pki, allow_reserve_cards=True).validate(
        presented(local_pki.card("bertil-reserve")), NOW)
    assert got.level == 2 and got.acr == LOA2 and got.reserve_card


def test_issuer_allow_list_one_family_per_host(local_pki):
    v = validator(local_pki, issuers=["TEST SITHS e-id Person HSA-id 3 CA v1"])
    assert v.validate(presented(local_pki.card("anna-hsa")), NOW).family == "hsa-id"
    assert outcome_of(v, presented(local_pki.card("anna-pnr"))) == Outcome.WRONG_CERTIFICATE


def test_issuing_ca_from_presented_chain_when_bundle_has_only_root(local_pki):
    trust = TrustAnchors.from_pem(local_pki.root.pem())
    v = CertificateValidator(trust, TrustSettings(ca_bundle="x",
                                                  issuers=["TEST SITHS e-id Person ID 3 CA v1"]))
    card = local_pki.card("anna-pnr")
    assert outcome_of(v, presented(card)) == Outcome.UNTRUSTED  # no intermediate anywhere
    assert v.validate(presented(card, local_pki.person_id_3.cert), NOW).family == "person-id"


def test_bundle_needs_a_root(local_pki):
    with pytest.raises(ValueError, match="no root"):
        TrustAnchors.from_pem(local_pki.hsa_id_3.pem())
    with pytest.raises(ValueError, match="not a CA"):
        TrustAnchors.from_pem(local_pki.root.pem() + local_pki.card("anna-hsa").pem())
    with pytest.raises(ValueError, match="no PEM"):
        TrustAnchors.from_pem(b"nothing here")


def test_default_allow_list_is_the_person_cas_in_the_bundle(local_pki):
    bundle = local_pki.bundle_pem() + local_pki.function.cert.public_bytes(Encoding.PEM)
    v = CertificateValidator(TrustAnchors.from_pem(bundle), TrustSettings(ca_bundle="x"))
    assert sorted(v.allowed_issuers) == sorted(a.name for a in local_pki.person_cas)
