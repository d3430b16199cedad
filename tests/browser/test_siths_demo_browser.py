"""The SITHS choice of `broker demo` in a real browser: the chooser sends the browser to the
SITHS host (TLS with the test PKI's certificate, asks for a client certificate) and back."""

import pytest

pytestmark = pytest.mark.browser


async def _to_siths(page, demo, demo_stack):
    """From the RP's button through the chooser's "SITHS-kort"; returns the URLs visited."""
    visited = []
    page.on("request", lambda r: visited.append(r.url) if r.is_navigation_request() else None)
    await page.goto(f"{demo}/demo-rp/")
    await page.click("text=Logga in i Lifecare (demo)")
    csp = await page.evaluate("() => fetch(location.href).then(r => "
                              "r.headers.get('content-security-policy'))")
    origin = demo_stack.siths.login_url.split("/login/")[0]
    # Chromium checks form-action on the chooser form's redirect to the SITHS host too.
    assert origin in csp, "the CSP form-action must list the SITHS login_url's origin"
    await page.get_by_role("button", name="SITHS-kort", exact=True).click()
    return visited


async def test_siths_button_goes_to_the_siths_host_without_a_card(browser, demo, demo_stack):
    """Headless chromium has no card to offer: our page says so and how to choose again."""
    context = await browser.new_context(ignore_https_errors=True, locale="sv-SE")
    page = await context.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    visited = await _to_siths(page, demo, demo_stack)
    await page.wait_for_url("**/login/siths/return?result=*")
    assert any(u.startswith(demo_stack.siths.login_url + "?ref=") for u in visited), visited
    assert 'data-error="siths_no_certificate"' in await page.content()
    text = await page.locator("main").inner_text()
    assert "Inget SITHS-kort lästes" in text
    assert "stäng alla webbläsarfönster" in text
    assert not [e for e in errors if "Content Security Policy" in e], errors  # the 400 is ours
    await context.close()


async def test_siths_login_with_the_demo_card(browser, demo, demo_stack):
    """The card as a person imports it (the .p12 and its password), presented through
    Playwright's client-certificate support, from the RP's button to its callback page."""
    siths = demo_stack.siths
    origin = siths.login_url.split("/login/")[0]
    context = await browser.new_context(ignore_https_errors=True, client_certificates=[{
        "origin": origin, "pfxPath": str(siths.card), "passphrase": siths.card_password}])
    page = await context.new_page()
    visited = await _to_siths(page, demo, demo_stack)
    await page.wait_for_url("**/demo-rp/callback**", timeout=15000)
    assert any(u.startswith(siths.login_url + "?ref=") for u in visited), visited
    assert await page.locator("h1").inner_text() == "Inloggad som Anna Andersson"
    assert await page.locator("#role").inner_text() == "Sjuksköterska"
    assert "SE2321000016-1234" in await page.locator("#id-token").inner_text()
    await context.close()
