"""The test PKI's files and its OCSP/CRL app behave like the real thing."""

from __future__ import annotations

import base64
from urllib.parse import quote

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509 import ocsp

from broker.connectors.siths.revocation import build_ocsp_request, crl_urls, ocsp_urls
from broker.connectors.siths.testpki import create_pki_app, create_test_pki


def test_written_files_and_browser_test_card(tmp_path):
    pki = create_test_pki("http://pki.example:8099")
    paths = pki.write_files(tmp_path, password="kort1234")
    bundle = x509.load_pem_x509_certificates(paths["ca-bundle.pem"].read_bytes())
    assert {b.subject.rfc4514_string().split(",")[0] for b in bundle} == {
        "CN=TEST SITHS e-id Root CA v2", "CN=TEST SITHS e-id Person HSA-id 3 CA v1",
        "CN=TEST SITHS e-id Person ID 3 CA v1", "CN=TEST SITHS e-id Person HSA-id 2 CA v1"}
    key, cert, extra = pkcs12.load_key_and_certificates(paths["anna-hsa.p12"].read_bytes(), b"kort1234")
    assert cert == pki.card("anna-hsa").cert and key is not None
    assert extra == [pki.hsa_id_3.cert]
    assert oct(paths["anna-hsa.key"].stat().st_mode)[-3:] == "600"
    card = pki.card("anna-hsa").cert
    assert ocsp_urls(card) == ["http://pki.example:8099/ocsp"]
    assert crl_urls(card) == ["http://pki.example:8099/crl/hsaid3.crl"]


async def test_pki_app_endpoints():
    pki = create_test_pki("http://pki.test")
    transport = httpx.ASGITransport(app=create_pki_app(pki))
    async with httpx.AsyncClient(transport=transport, base_url="http://pki.test") as client:
        card = pki.card("anna-pnr")
        req = build_ocsp_request(card.cert, card.issuer.cert, None)
        got = await client.get("/ocsp/" + quote(base64.b64encode(req).decode(), safe=""))
        assert got.status_code == 200
        assert ocsp.load_der_ocsp_response(got.content).certificate_status == ocsp.OCSPCertStatus.GOOD
        post = await client.post("/ocsp", content=req)
        assert post.headers["content-type"] == "application/ocsp-response"
        resp = ocsp.load_der_ocsp_response(post.content)
        assert resp.certificate_status == ocsp.OCSPCertStatus.GOOD
        pki.revoke(card)
        resp = ocsp.load_der_ocsp_response((await client.post("/ocsp", content=req)).content)
        assert resp.certificate_status == ocsp.OCSPCertStatus.REVOKED
        crl = x509.load_der_x509_crl((await client.get("/crl/id3.crl")).content)
        assert crl.get_revoked_certificate_by_serial_number(card.cert.serial_number) is not None
        assert crl.is_signature_valid(pki.person_id_3.cert.public_key())
        ca = x509.load_der_x509_certificate((await client.get("/ca/root.cer")).content)
        assert ca == pki.root.cert
        assert (await client.get("/ca/nope.cer")).status_code == 404
        pki.ocsp_mode = "down"
        assert (await client.post("/ocsp", content=req)).status_code == 503
