"""Revocation over real HTTP against the test PKI's OCSP responder and CRL endpoint."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os

import pytest

from broker.connectors.siths import (
    Outcome,
    PresentedCertificate,
    RevocationChecker,
    SithsLoginFailure,
)
from broker.connectors.siths.revocation import (
    RevocationError,
    build_ocsp_request,
    verify_ocsp_response,
)
from broker.connectors.siths.testpki import create_test_pki


def presented(card) -> PresentedCertificate:
    return PresentedCertificate(card.cert, (), "header:nginx")


async def outcome(auth, card) -> Outcome:
    with pytest.raises(SithsLoginFailure) as info:
        await auth.authenticate(presented(card))
    return info.value.outcome


async def test_good_by_ocsp(pki, make_auth):
    ident = await make_auth().authenticate(presented(pki.card("anna-hsa")))
    assert ident.hsa_id == "SE2321000016-1234"
    assert ident.evidence["revocation"]["source"] == "ocsp"
    assert ident.evidence["revocation"]["status"] == "good"
    assert pki.ocsp_requests == 1 and pki.crl_requests == 0


async def test_good_by_ocsp_signed_by_the_ca_itself(pki, make_auth):
    pki.ocsp_signer = "ca"
    ident = await make_auth().authenticate(presented(pki.card("anna-pnr")))
    assert ident.evidence["revocation"]["source"] == "ocsp"


async def test_revoked_by_ocsp(pki, make_auth):
    pki.revoke(pki.card("anna-hsa"))
    assert await outcome(make_auth(), pki.card("anna-hsa")) == Outcome.REVOKED
    assert pki.crl_requests == 0


async def test_revoked_by_crl_when_ocsp_down(pki, make_auth):
    pki.ocsp_mode = "down"
    pki.revoke(pki.card("anna-pnr"))
    assert await outcome(make_auth(), pki.card("anna-pnr")) == Outcome.REVOKED
    assert pki.ocsp_requests == 1 and pki.crl_requests == 1


async def test_good_by_crl_when_ocsp_down(pki, make_auth):
    pki.ocsp_mode = "down"
    pki.revoke(pki.card("anna-pnr"))  # someone else on the same CA... different CA here
    ident = await make_auth().authenticate(presented(pki.card("anna-hsa")))
    assert ident.evidence["revocation"]["source"] == "crl"


async def test_unknown_status_refused_even_with_soft_fail(pki, make_auth):
    pki.make_unknown(pki.card("anna-hsa"))
    assert await outcome(make_auth(), pki.card("anna-hsa")) == Outcome.REVOCATION_UNKNOWN
    auth = make_auth(revocation={"soft_fail": True})
    assert await outcome(auth, pki.card("anna-hsa")) == Outcome.REVOCATION_UNKNOWN
    assert pki.crl_requests == 0  # a signed "unknown" is not second-guessed by the CRL


async def test_both_down_fails_closed(pki, make_auth, caplog):
    pki.ocsp_mode = "down"
    pki.crl_available = False
    with caplog.at_level(logging.WARNING):
        assert await outcome(make_auth(), pki.card("anna-pnr")) == Outcome.REVOCATION_UNKNOWN
    assert "199001012385" not in caplog.text


async def test_both_down_soft_fail_accepts_and_says_so(pki, make_auth):
    pki.ocsp_mode = "down"
    pki.crl_available = False
    ident = await make_auth(revocation={"soft_fail": True}).authenticate(presented(pki.card("anna-hsa")))
    assert ident.evidence["revocation"]["source"] == "soft-fail"
    assert ident.evidence["revocation"]["status"] == "unavailable"


async def test_unreachable_responder_fails_closed(pki, make_auth):
    auth = make_auth(revocation={"ocsp_url": "http://127.0.0.1:9/ocsp", "crl": False})
    assert await outcome(auth, pki.card("anna-hsa")) == Outcome.REVOCATION_UNKNOWN


@pytest.mark.parametrize("mode", ["foreign-signer", "wrong-nonce", "stale", "trylater"])
async def test_unbelievable_ocsp_answers_fall_back_to_crl(pki, make_auth, mode):
    pki.ocsp_mode = mode
    pki.revoke(pki.card("anna-hsa"))
    assert await outcome(make_auth(), pki.card("anna-hsa")) == Outcome.REVOKED
    assert pki.crl_requests == 1
    pki.reset()
    pki.ocsp_mode = mode
    pki.crl_available = False
    assert await outcome(make_auth(), pki.card("anna-pnr")) == Outcome.REVOCATION_UNKNOWN


async def test_ocsp_verdict_cached_until_next_update(pki, make_auth, store, clock):
    pki.ocsp_validity = 600
    auth = make_auth()
    card = pki.card("anna-hsa")
    await auth.authenticate(presented(card))
    assert pki.ocsp_requests == 1
    key = "siths:" + RevocationChecker.cache_key(card.cert, pki.hsa_id_3.cert)  # its records
    assert key.startswith("siths:ocsp:")
    assert (await store.get(key))["status"] == "good"

    pki.revoke(card)  # the cached, signed "good" stands until nextUpdate
    clock.advance(500)
    ident = await auth.authenticate(presented(card))
    assert ident.evidence["revocation"]["source"] == "ocsp-cache"
    assert pki.ocsp_requests == 1

    clock.advance(120)  # past nextUpdate
    assert await outcome(auth, card) == Outcome.REVOKED
    assert pki.ocsp_requests == 2


async def test_cache_is_shared_through_the_store(pki, make_auth):
    card = pki.card("anna-pnr")
    await make_auth().authenticate(presented(card))
    pki.ocsp_mode = "down"  # a second replica answers from the shared store
    ident = await make_auth().authenticate(presented(card))
    assert ident.evidence["revocation"]["source"] == "ocsp-cache"
    assert pki.ocsp_requests == 1


async def test_cache_capped_by_cache_max(pki, make_auth, clock):
    pki.ocsp_validity = 7200
    auth = make_auth(revocation={"cache_max": 60})
    card = pki.card("anna-hsa")
    await auth.authenticate(presented(card))
    clock.advance(61)
    await auth.authenticate(presented(card))
    assert pki.ocsp_requests == 2


async def test_failures_are_not_cached(pki, make_auth):
    pki.ocsp_mode = "down"
    pki.crl_available = False
    auth = make_auth()
    card = pki.card("anna-hsa")
    assert await outcome(auth, card) == Outcome.REVOCATION_UNKNOWN
    pki.reset()
    await auth.authenticate(presented(card))
    assert pki.ocsp_requests == 1


async def test_crl_kept_until_next_update_then_refetched(pki, make_auth, clock):
    pki.ocsp_mode = "down"
    pki.crl_validity = 3600
    auth = make_auth(revocation={"crl_refresh_margin": 600})
    card = pki.card("anna-hsa")
    await auth.authenticate(presented(card))
    await auth.authenticate(presented(card))
    assert pki.crl_requests == 1  # the second login used the kept CRL

    pki.revoke(card)
    clock.advance(3100)  # inside the refresh margin: answered from memory, refreshed behind
    ident = await auth.authenticate(presented(card))
    assert ident.evidence["revocation"]["source"] == "crl"
    for _ in range(100):
        if pki.crl_requests == 2 and not auth.revocation.crls._inflight:
            break
        await asyncio.sleep(0.02)
    assert pki.crl_requests == 2
    assert await outcome(auth, card) == Outcome.REVOKED  # the refreshed CRL is in use


async def test_expired_crl_not_used_when_endpoint_down(pki, make_auth, clock):
    pki.ocsp_mode = "down"
    pki.crl_validity = 600
    auth = make_auth(revocation={"crl_refresh_margin": 0})
    card = pki.card("anna-hsa")
    await auth.authenticate(presented(card))
    pki.crl_available = False
    clock.advance(700)
    assert await outcome(auth, card) == Outcome.REVOCATION_UNKNOWN


async def test_crl_url_override(pki, make_auth):
    pki.ocsp_mode = "down"
    pki.revoke(pki.card("anna-hsa"))
    # point the HSA-id CA at the wrong CRL: its signature does not verify -> no answer
    wrong = {"TEST SITHS e-id Person HSA-id 3 CA v1": f"{pki.base_url}/crl/id3.crl"}
    auth = make_auth(revocation={"crl_urls": wrong})
    assert await outcome(auth, pki.card("anna-hsa")) == Outcome.REVOCATION_UNKNOWN
    right = {"TEST SITHS e-id Person HSA-id 3 CA v1": f"{pki.base_url}/crl/hsaid3.crl"}
    assert await outcome(make_auth(revocation={"crl_urls": right}), pki.card("anna-hsa")) == \
        Outcome.REVOKED


async def test_ocsp_url_override(pki, make_auth):
    auth = make_auth(revocation={"ocsp_url": f"{pki.base_url}/ocsp", "crl": False})
    await auth.authenticate(presented(pki.card("anna-hsa")))
    assert pki.ocsp_requests == 1


async def test_concurrent_first_crl_fetch_is_single_flight(pki, make_auth):
    pki.ocsp_mode = "down"
    auth = make_auth()
    cards = [pki.card("anna-hsa")] * 5
    await asyncio.gather(*(auth.authenticate(presented(c)) for c in cards))
    assert pki.crl_requests == 1


# --- OCSP verification without HTTP (RSA keys, edge cases) ----------------------------------

@pytest.fixture(scope="module")
def rsa_pki():
    return create_test_pki("http://rsa.test", key_type="rsa")


def test_rsa_ocsp_response_verifies(rsa_pki):
    card = rsa_pki.card("anna-hsa")
    nonce = os.urandom(16)
    der = rsa_pki.ocsp_response(build_ocsp_request(card.cert, card.issuer.cert, nonce))
    single = verify_ocsp_response(der, card.cert, card.issuer.cert, nonce=nonce,
                                  now=dt.datetime.now(dt.UTC))
    assert single.serial_number == card.cert.serial_number


def test_response_for_another_certificate_refused(rsa_pki):
    card, other = rsa_pki.card("anna-hsa"), rsa_pki.card("anna-hsa-sign")
    der = rsa_pki.ocsp_response(build_ocsp_request(other.cert, other.issuer.cert, None))
    with pytest.raises(RevocationError, match="not about this certificate"):
        verify_ocsp_response(der, card.cert, card.issuer.cert, nonce=None,
                             now=dt.datetime.now(dt.UTC))


def test_response_signed_by_another_ca_refused(rsa_pki):
    card = rsa_pki.card("anna-hsa")
    other = create_test_pki("http://other.test", people=False)
    # a response from a different hierarchy's responder, about our certificate
    request = build_ocsp_request(card.cert, card.issuer.cert, None)
    der = rsa_pki.ocsp_response(request)
    with pytest.raises(RevocationError):
        verify_ocsp_response(der, card.cert, other.hsa_id_3.cert, nonce=None,
                             now=dt.datetime.now(dt.UTC))


def test_missing_nonce_refused_when_required(rsa_pki):
    card = rsa_pki.card("anna-hsa")
    der = rsa_pki.ocsp_response(build_ocsp_request(card.cert, card.issuer.cert, None))
    with pytest.raises(RevocationError, match="nonce"):
        verify_ocsp_response(der, card.cert, card.issuer.cert, nonce=b"x" * 16,
                             now=dt.datetime.now(dt.UTC), require_nonce=True)


def test_future_response_refused(rsa_pki):
    card = rsa_pki.card("anna-hsa")
    der = rsa_pki.ocsp_response(build_ocsp_request(card.cert, card.issuer.cert, None))
    with pytest.raises(RevocationError, match="future"):
        verify_ocsp_response(der, card.cert, card.issuer.cert, nonce=None,
                             now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))


# --- signatures: a genuine answer whose signature does not verify is no answer ------------

def _tampered(der: bytes, signature: bytes) -> bytes:
    """The same DER with one bit of its signature flipped (nothing else changes)."""
    assert der.count(signature) == 1
    bad = bytearray(signature)
    bad[len(bad) // 2] ^= 0x01
    return der.replace(signature, bytes(bad))


@pytest.mark.parametrize("key_type", ["ec", "rsa"])
def test_ocsp_response_with_a_broken_signature_refused(rsa_pki, pki, key_type):
    from cryptography.x509 import ocsp

    source = rsa_pki if key_type == "rsa" else pki
    card = source.card("anna-hsa")
    der = source.ocsp_response(build_ocsp_request(card.cert, card.issuer.cert, None))
    now = dt.datetime.now(dt.UTC)
    verify_ocsp_response(der, card.cert, card.issuer.cert, nonce=None, now=now)  # genuine: fine
    signature = ocsp.load_der_ocsp_response(der).signature
    with pytest.raises(RevocationError, match="signature"):
        verify_ocsp_response(_tampered(der, signature), card.cert, card.issuer.cert, nonce=None,
                             now=now)


@pytest.mark.parametrize("key_type", ["ec", "rsa"])
def test_crl_with_a_broken_signature_refused(rsa_pki, pki, key_type):
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from broker.connectors.siths.revocation import verify_crl

    source = rsa_pki if key_type == "rsa" else pki
    issuer = source.card("anna-hsa").issuer
    der = source.crl(issuer)
    if der.lstrip().startswith(b"-----"):
        der = x509.load_pem_x509_crl(der).public_bytes(Encoding.DER)
    now = dt.datetime.now(dt.UTC)
    verify_crl(der, issuer.cert, now=now)  # genuine: fine
    signature = x509.load_der_x509_crl(der).signature
    with pytest.raises(RevocationError, match="signed"):
        verify_crl(_tampered(der, signature), issuer.cert, now=now)


# --- the audit evidence of a revocation check: what answered, when, and what it said ---------

async def test_the_evidence_says_which_source_answered_when_and_what(pki, make_auth, clock):
    auth = make_auth()
    card = pki.card("anna-hsa")
    fresh = (await auth.authenticate(presented(card))).evidence["revocation"]
    assert fresh["source"] == "ocsp" and fresh["status"] == "good"
    assert fresh["checked_at"] == int(clock())
    assert fresh["this_update"] <= fresh["checked_at"] < fresh["next_update"]
    assert "revoked_at" not in fresh and "reason" not in fresh
    clock.advance(5)
    cached = (await auth.authenticate(presented(card))).evidence["revocation"]
    assert cached["source"] == "ocsp-cache" and cached["checked_at"] == int(clock())
    assert cached["this_update"] == fresh["this_update"]
    assert pki.ocsp_requests == 1  # the second answer came from the cache

    pki.ocsp_mode = "down"
    other = pki.card("anna-pnr")
    by_crl = (await make_auth().authenticate(presented(other))).evidence["revocation"]
    assert by_crl["source"] == "crl" and by_crl["status"] == "good"
    assert by_crl["checked_at"] == int(clock())
    assert "this_update" in by_crl and "next_update" in by_crl
