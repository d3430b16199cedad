"""SSO and logout in a real browser: Debian's chromium driven by Playwright, with real
callback pages served by the fake relying parties on loopback."""

from __future__ import annotations

import os
import tempfile

import pytest
from sso_support import wait_until

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def page():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (browsers are never "
                    "downloaded by the tests)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="sso-chromium-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            context.set_default_timeout(15000)
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


@pytest.mark.browser
def test_sso_and_logout_everywhere_in_a_real_browser(sso, page):
    lifecare, mcss = sso.lifecare, sso.mcss
    logins = sso.logins
    page.goto(lifecare.url + "/start")
    page.wait_for_url(lifecare.redirect_uri + "*")
    assert page.locator("h1").inner_text() == "Inloggad i Lifecare"
    sid = page.locator("#sid").inner_text()
    assert sso.logins == logins + 1

    cookies = {c["name"]: c for c in page.context.cookies(sso.issuer)}
    sso_cookie = cookies["broker_sso"]  # plain-http loopback issuer: no __Host- prefix
    assert sso_cookie["httpOnly"] and sso_cookie["sameSite"] == "Lax"

    page.goto(mcss.url + "/start")
    page.wait_for_url(mcss.redirect_uri + "*")
    assert page.locator("h1").inner_text() == "Inloggad i MCSS"
    assert page.locator("#sid").inner_text() == sid
    assert sso.logins == logins + 1, "the browser had to log in again for MCSS"

    page.goto(lifecare.url + "/start")
    page.wait_for_url(lifecare.redirect_uri + "*")
    page.click("#logout")
    page.wait_for_url(lifecare.bye_uri + "*")
    assert page.locator("h1").inner_text() == "Utloggad från Lifecare"
    assert page.locator("#state").inner_text() == "bye-lifecare"
    wait_until(lambda: lifecare.valid_logouts(sid) and mcss.valid_logouts(sid),
               what="verified logout tokens at both RPs")
    assert "broker_sso" not in {c["name"] for c in page.context.cookies(sso.issuer)}

    page.goto(mcss.url + "/start?prompt=none")
    page.wait_for_url(mcss.redirect_uri + "*")
    assert page.locator("h1").inner_text() == "Fel: login_required"
