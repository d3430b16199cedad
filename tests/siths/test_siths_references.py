"""The hop to the SITHS host and back works once, and only for the browser that began it."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import redis as redis_lib


def hop(stack, browser) -> tuple[str, str]:
    """Main host -> SITHS host; (the reference URL, the return URL)."""
    ref_url = stack.to_siths_host(browser, stack.rp()).headers["location"]
    response = browser.get(ref_url)
    assert response.status_code == 303, response.text[:300]
    return ref_url, response.headers["location"]


def test_reference_works_once(siths_stack, pki):
    with siths_stack.browser(pki.card("anna-hsa")) as browser:
        ref_url, _ = hop(siths_stack, browser)
        again = browser.get(ref_url)
    assert again.status_code == 400
    assert 'data-error="siths_link_used"' in again.text
    assert "redan använts" in again.text


def test_made_up_reference_is_refused(siths_stack, pki):
    with siths_stack.browser(pki.card("anna-hsa")) as browser:
        page = browser.get(siths_stack.login_url + "?ref=" + "A" * 43)
    assert page.status_code == 400
    assert 'data-error="siths_link_used"' in page.text


def test_return_from_another_browser_is_refused_and_does_not_spoil_the_login(siths_stack, pki):
    rp = siths_stack.rp()
    with siths_stack.browser(pki.card("anna-hsa")) as anna:
        ref_url = siths_stack.to_siths_host(anna, rp).headers["location"]
        back_url = anna.get(ref_url).headers["location"]

        with siths_stack.browser(None) as stranger:  # no cookie at all
            page = stranger.get(back_url)
            assert page.status_code == 403
            assert 'data-error="error_wrong_browser"' in page.text
        with siths_stack.browser(None) as other:  # a browser with a login of its own
            siths_stack.to_siths_host(other, siths_stack.rp())
            assert other.cookies.get("broker_b")
            page = other.get(back_url)
            assert page.status_code == 403
            assert 'data-error="error_wrong_browser"' in page.text

        done = anna.get(back_url)
        assert "code" in rp.callback(done)
        replay = anna.get(back_url)
    assert replay.status_code == 400
    assert 'data-error="siths_link_used"' in replay.text


def test_only_hashes_of_references_are_kept_and_they_expire(siths_stack, pki, redis):
    with siths_stack.browser(pki.card("anna-hsa")) as browser:
        ref_url = siths_stack.to_siths_host(browser, siths_stack.rp()).headers["location"]
    ref = parse_qs(urlsplit(ref_url).query)["ref"][0]
    prefix = siths_stack.app.state.broker.settings.store.prefix
    client = redis_lib.Redis.from_url(redis)
    try:
        keys = [k.decode() for k in client.keys(f"{prefix}siths:ref:*")]
        assert keys, "the reference is kept in the store"
        assert not any(ref in k for k in keys)
        assert all(0 < client.ttl(k) <= 120 for k in keys)
    finally:
        client.close()


def test_error_page_for_a_proxy_that_rejected_the_certificate(siths_stack):
    """ingress-nginx `auth-tls-error-page` target: says what to do, in both languages."""
    with siths_stack.browser(None) as browser:
        sv = browser.get("/login/siths/error")
        en = browser.get("/login/siths/error?lang=en")
    assert sv.status_code == en.status_code == 400
    assert "Stäng alla webbläsarfönster" in sv.text
    assert "Close every browser window" in en.text


def test_starting_again_voids_the_earlier_reference(siths_stack, pki):
    rp = siths_stack.rp()
    with siths_stack.browser(pki.card("anna-hsa")) as browser:
        first = browser.get("/authorize", params=rp.params())
        resume = first.headers["location"]  # /login/<txn>: the method step
        older = browser.get(resume).headers["location"]
        newer = browser.get(resume).headers["location"]
        assert older != newer
        assert 'data-error="siths_link_used"' in browser.get(older).text
        assert browser.get(newer).status_code == 303
