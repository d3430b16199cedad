"""SITHS login end to end in proxy mode: a real nginx terminates TLS on the SITHS host.

main host (broker, plain HTTP) -> nginx (TLS, optional_no_ca, $ssl_client_escaped_cert,
proxy_bind 127.0.0.2 = the only trusted proxy) -> broker -> main host -> the RP's callback.
"""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

PAGE_TEXT = {  # a phrase each failure page must show (sv), so the person knows what to do
    "siths_no_certificate": "Inget SITHS-kort lästes",
    "siths_untrusted": "inte från ett SITHS-kort som godtas",
    "siths_expired": "gäller inte längre",
    "siths_revoked": "är spärrat",
    "siths_revocation_unknown": "Det gick inte att kontrollera",
    "siths_wrong_certificate": "fel certifikat på kortet",
    "siths_reserve_not_allowed": "Reservkort kan inte användas",
}


def assert_page(response: httpx.Response, code: str) -> None:
    assert response.status_code == 400, (response.status_code, response.text[:400])
    assert f'data-error="{code}"' in response.text
    assert PAGE_TEXT[code] in response.text
    assert "stäng alla webbläsarfönster" in response.text.lower()


def fresh_card(pki, authority=None, **kw):
    """A card of its own, so no cached revocation verdict of another test applies."""
    fresh_card.n += 1
    anna = {"given_name": "Anna", "surname": "Andersson", "serial": "SE2321000016-1234"}
    return pki.issue_person(authority or pki.hsa_id_3, label=f"fresh-{fresh_card.n}", **{**anna, **kw})


fresh_card.n = 0


def test_hsa_id_card_logs_in_through_nginx(siths_stack, pki):
    rp = siths_stack.rp()
    with siths_stack.browser(pki.card("anna-hsa")) as browser:
        done = siths_stack.login(browser, rp, scope="openid profile assignments")
    code = rp.callback(done)["code"]
    tokens = rp.token(code)
    assert tokens.status_code == 200, tokens.text
    claims = rp.verify(tokens.json()["id_token"])
    assert claims["sub"] == "u-anna"
    assert claims["employeeHsaId"] == "SE2321000016-1234"
    assert claims["acr"] == "http://id.elegnamnden.se/loa/1.0/loa3"
    userinfo = httpx.get(siths_stack.issuer + "/userinfo",
                         headers={"authorization": f"Bearer {tokens.json()['access_token']}"})
    assert userinfo.json()["given_name"] == "Anna"


def test_personal_number_card_logs_in(siths_stack, pki):
    rp = siths_stack.rp()
    with siths_stack.browser(pki.card("anna-pnr")) as browser:
        done = siths_stack.login(
            browser, rp, scope="openid https://id.oidc.se/scope/naturalPersonNumber")
    claims = rp.verify(rp.token(rp.callback(done)["code"]).json()["id_token"])
    assert claims["sub"] == "u-anna"
    assert claims["https://id.oidc.se/claim/personalIdentityNumber"] == "199001012385"


def test_no_card_gets_the_no_certificate_page(siths_stack, pki):
    with siths_stack.browser(None) as browser:
        assert_page(siths_stack.login(browser), "siths_no_certificate")


def test_header_forged_through_nginx_is_replaced(siths_stack, pki):
    """A browser without a card sends the header itself: nginx drops it."""
    with siths_stack.browser(None) as browser:
        browser.headers["ssl-client-cert"] = siths_stack.header_value(pki.card("anna-hsa"))
        assert_page(siths_stack.login(browser), "siths_no_certificate")


@pytest.mark.parametrize("spoof", [{}, {"x-forwarded-for": "127.0.0.2"}])
def test_certificate_header_from_an_untrusted_address_is_ignored(siths_stack, pki, spoof):
    """Straight to the broker from 127.0.0.1 (not the proxy) with a perfect header."""
    rp = siths_stack.rp()
    with siths_stack.browser(None) as browser:
        ref_url = siths_stack.to_siths_host(browser, rp).headers["location"]
        direct = ref_url.replace(f"https://localhost:{siths_stack.nginx_port}",
                                 f"http://127.0.0.1:{siths_stack.broker_port}")
        hop = browser.get(direct, headers={
            "host": f"localhost:{siths_stack.nginx_port}",
            "ssl-client-cert": siths_stack.header_value(pki.card("anna-hsa")), **spoof})
        assert hop.status_code == 303
        assert_page(browser.get(hop.headers["location"]), "siths_no_certificate")


def test_certificate_endpoint_is_not_served_on_the_main_host(siths_stack, pki):
    rp = siths_stack.rp()
    with siths_stack.browser(pki.card("anna-hsa")) as browser:
        ref_url = siths_stack.to_siths_host(browser, rp).headers["location"]
        query = ref_url.split("?", 1)[1]
        assert browser.get(f"{siths_stack.issuer}/login/siths/?{query}").status_code == 404
        # the reference was not used up by that: the real hop still works
        hop = browser.get(ref_url)
        assert hop.status_code == 303 and "result=" in hop.headers["location"]


def test_expired_card(siths_stack, pki):
    now = pki.now()
    card = fresh_card(pki, not_before=now - dt.timedelta(days=800),
                      not_after=now - dt.timedelta(days=1))
    with siths_stack.browser(card) as browser:
        assert_page(siths_stack.login(browser), "siths_expired")


def test_card_revoked_per_ocsp(siths_stack, pki):
    card = fresh_card(pki)
    pki.revoke(card)
    with siths_stack.browser(card) as browser:
        assert_page(siths_stack.login(browser), "siths_revoked")


def test_card_revoked_per_crl_when_ocsp_is_down(siths_stack, pki):
    # The ID 3 CA's CRL is fetched by this test only (CRLs are cached until nextUpdate).
    card = fresh_card(pki, pki.person_id_3, serial="199001012385")
    pki.revoke(card)
    pki.ocsp_mode = "down"
    with siths_stack.browser(card) as browser:
        assert_page(siths_stack.login(browser), "siths_revoked")
    assert pki.crl_requests >= 1


def test_status_unknown_to_the_responder(siths_stack, pki):
    card = fresh_card(pki)
    pki.make_unknown(card)
    with siths_stack.browser(card) as browser:
        assert_page(siths_stack.login(browser), "siths_revocation_unknown")


def test_responders_down_fails_closed(siths_stack, pki):
    card = fresh_card(pki)
    pki.ocsp_mode = "down"
    pki.crl_available = False
    with siths_stack.browser(card) as browser:
        assert_page(siths_stack.login(browser), "siths_revocation_unknown")


def test_signature_certificate_is_the_wrong_one(siths_stack, pki):
    with siths_stack.browser(pki.card("anna-hsa-sign")) as browser:
        assert_page(siths_stack.login(browser), "siths_wrong_certificate")


def test_card_from_a_foreign_ca(siths_stack, pki):
    from broker.connectors.siths.testpki import create_test_pki

    foreign = create_test_pki("http://127.0.0.1:9")  # same names, other keys
    with siths_stack.browser(foreign.card("anna-hsa")) as browser:
        assert_page(siths_stack.login(browser), "siths_untrusted")


def test_reserve_card_when_not_allowed(siths_stack, pki):
    with siths_stack.browser(pki.card("bertil-reserve")) as browser:
        assert_page(siths_stack.login(browser), "siths_reserve_not_allowed")


def test_failure_page_in_english_and_back_starts_again(siths_stack, pki):
    with siths_stack.browser(pki.card("anna-hsa-sign"), language="en") as browser:
        page = siths_stack.login(browser)
        assert page.status_code == 400
        assert "wrong certificate on the card" in page.text
        assert "close every browser window" in page.text.lower()
        # Back on the page goes to the method step again, which hops to the SITHS host.
        back = browser.get(siths_stack.issuer + _back_link(page.text))
        assert back.status_code == 303
        assert back.headers["location"].startswith(siths_stack.login_url + "?ref=")


def _back_link(html: str) -> str:
    start = html.index('class="button" href="') + len('class="button" href="')
    return html[start:html.index('"', start)]
