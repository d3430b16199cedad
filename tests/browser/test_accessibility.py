"""axe-core over every login page and state, in Swedish and English, on a phone and a
computer; any violation fails. And the focus ring: at least 3:1 against what it is drawn
on (WCAG 1.4.11), checked on each control reached with Tab.

axe-core comes bundled in the `axe-playwright-python` package (a [test] extra, so
`bash .ci/setup` installs it; nothing is downloaded at run time).

`BROKER_SCREENSHOTS=docs/screenshots python3 -m pytest tests/browser/test_accessibility.py`
also saves each page (Swedish, phone) there: the README shows the main ones.
"""

import os
import re
from pathlib import Path

import pytest

from tests.browser.conftest import people_stack
from tests.support.fakes import FakeConnector

pytestmark = pytest.mark.browser
WAIT_MS = 20_000
SHOTS = os.environ.get("BROKER_SCREENSHOTS")
if SHOTS:
    os.makedirs(SHOTS, exist_ok=True)


@pytest.fixture(scope="module")
def stack(redis, tmp_path_factory):
    """Two methods (so there is a chooser) and the personal-number field: every page."""
    from tests.support.server import serve

    built, port = people_stack(redis, tmp_path_factory.mktemp("a11y"),
                               extra_connectors={"test": FakeConnector},
                               personal_number_field=True)
    with serve(built.app, port):
        yield built


def _luminance(rgb):
    def channel(c):
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a, b) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


FOCUS_JS = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  const rgb = v => (v.match(/[0-9.]+/g) || []).slice(0, 4).map(Number);
  const s = getComputedStyle(e);
  let p = e.parentElement, bg = null;
  while (p) {
    const c = rgb(getComputedStyle(p).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] > 0)) { bg = c.slice(0, 3); break; }
    p = p.parentElement;
  }
  return {name: (e.textContent || e.value || e.id || e.tagName).trim().slice(0, 40),
          style: s.outlineStyle, width: parseFloat(s.outlineWidth),
          color: rgb(s.outlineColor).slice(0, 3), background: bg || [255, 255, 255]};
}"""


async def check(page, name, device, lang):
    """axe finds nothing, every focus ring is visible at 3:1; a screenshot when asked."""
    from axe_playwright_python.async_playwright import Axe

    await page.wait_for_load_state("load")
    results = await Axe().run(page)
    violations = results.response["violations"]
    assert not violations, f"{name} ({device}, {lang}): " + "; ".join(
        f"{v['id']}: {[n['target'] for n in v['nodes']][:3]}" for v in violations)
    seen = set()
    for _ in range(12):
        await page.keyboard.press("Tab")
        focus = await page.evaluate(FOCUS_JS)
        if focus is None or focus["name"] in seen:
            continue
        seen.add(focus["name"])
        assert focus["style"] != "none" and focus["width"] >= 2, (name, focus)
        ratio = contrast(focus["color"], focus["background"])
        assert ratio >= 3, f"{name}: focus ring on {focus['name']!r} is {ratio:.2f}:1"
    if SHOTS and device == "phone" and lang == "sv":
        await page.evaluate("() => document.activeElement && document.activeElement.blur()")
        await page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


async def new_page(browser, stack, device, lang):
    stack.control("reset")
    context = await browser.new_context(**stack.context_options(
        device, locale="en-GB" if lang == "en" else "sv-SE",
        extra_http_headers={"Accept-Language": "en" if lang == "en" else "sv"}))
    page = await context.new_page()
    await page.clock.install()
    return context, page


async def to_login(page, stack, lang):
    await page.goto(f"{stack.base}/demo-rp/")
    await page.click("#login")
    await page.wait_for_selector("form[action$='/method']", timeout=WAIT_MS)
    if lang == "en":
        await page.click("a.lang")
        await page.wait_for_selector("html[lang=en]", timeout=WAIT_MS)


async def to_bankid(page):
    await page.get_by_role("button", name="BankID", exact=True).click()
    await page.wait_for_selector("#bankid-choice", timeout=WAIT_MS)


def txn_of(url):
    return re.search(r"/login/(?:bankid/)?([A-Za-z0-9_-]{20,})", url).group(1)


@pytest.mark.parametrize("device", ["phone", "desktop"])
@pytest.mark.parametrize("lang", ["sv", "en"])
async def test_every_login_page_and_state(browser, stack, device, lang):
    context, page = await new_page(browser, stack, device, lang)
    await to_login(page, stack, lang)
    await check(page, "01-chooser", device, lang)
    await to_bankid(page)
    await check(page, "02-bankid-choice", device, lang)
    # The personal-number field with an error.
    await page.locator("#pnr").fill("900101-2384")
    await page.locator("button[name=device][value=other]").click()
    await page.locator("#pnr-error").wait_for(timeout=WAIT_MS)
    await check(page, "03-personal-number-error", device, lang)
    await page.locator("#pnr").fill("")
    await page.locator("button[name=device][value=other]").click()
    qr = page.locator("#qr")
    await qr.wait_for(state="visible", timeout=WAIT_MS)
    await check(page, "04-qr", device, lang)
    txn_id = txn_of(page.url)
    # Two minutes before the login expires: the warning.
    await page.clock.fast_forward("08:05")
    await page.locator("#expiry-extend").wait_for(timeout=WAIT_MS)
    await check(page, "05-expiry-warning", device, lang)
    await page.locator("#expiry-extend").click()
    await page.locator("#expiry-extend").wait_for(state="detached", timeout=WAIT_MS)
    # Scanned: the QR code gives way to "enter your security code".
    stack.control("scan", qr=stack.qr_now(txn_id), personalNumber="198502022398")
    await qr.wait_for(state="hidden", timeout=WAIT_MS)
    await check(page, "06-qr-scanned", device, lang)
    stack.control("cancel", orderRef=stack.pending()["orderRef"])
    await page.locator("#retry").wait_for(timeout=WAIT_MS)
    await check(page, "07-cancelled-in-app", device, lang)
    # BankID unavailable.
    stack.control("faults", endpoint="auth", status=503, times=None)
    try:
        await page.locator("#retry").click()
        await page.wait_for_selector(".message.error", timeout=WAIT_MS)
        await check(page, "08-bankid-unavailable", device, lang)
    finally:
        stack.clear_faults()
    # Same device: the wait page with "Starta BankID-appen" (what a phone without the
    # script shows, and a computer always).
    await page.goto(f"{stack.base}/login/bankid/{txn_id}/wait")
    await page.locator("#cancel").click()
    await page.locator("button[name=device][value=this]").click()
    if device == "phone":
        await page.wait_for_url("**/bankid-simulator/**", timeout=WAIT_MS)
        await page.goto(f"{stack.base}/login/bankid/{txn_id}/wait")
    await page.locator("#launch").wait_for(timeout=WAIT_MS)
    await check(page, "09-start-app", device, lang)
    # Erik has two roles: the picker.
    stack.control("approve", orderRef=stack.pending()["orderRef"], personalNumber="198502022398")
    await page.wait_for_selector("input[type=radio]", timeout=WAIT_MS)
    await check(page, "10-picker", device, lang)
    await page.locator("input[type=radio]").first.check()
    await page.locator("form[action$='/select'] button").click()
    await page.wait_for_url("**/demo-rp/callback**", timeout=WAIT_MS)
    # Logging out: the confirmation, then the logged-out page with the way back.
    await page.goto(f"{stack.base}/logout")
    await check(page, "11-logout-confirm", device, lang)
    await page.locator("button[name=confirm]").click()
    await page.wait_for_selector("#way-back", timeout=WAIT_MS)
    await check(page, "12-logged-out", device, lang)
    # A login that is gone: the way back to the service.
    await page.goto(f"{stack.base}/login/bankid/{txn_id}/wait")
    await page.wait_for_selector("#way-back", timeout=WAIT_MS)
    await check(page, "13-expired", device, lang)
    await context.close()


@pytest.mark.parametrize("device", ["phone", "desktop"])
async def test_denied_and_wrong_browser_pages(browser, stack, device):
    for lang in ("sv", "en"):
        context, page = await new_page(browser, stack, device, lang)
        await to_login(page, stack, lang)
        await to_bankid(page)
        await page.locator("button[name=device][value=other]").click()
        await page.locator("#qr").wait_for(state="visible", timeout=WAIT_MS)
        txn_id = txn_of(page.url)
        # Another browser opening this login's address.
        other = await browser.new_context(**stack.context_options(device))
        thief = await other.new_page()
        await thief.goto(f"{stack.base}/login/bankid/{txn_id}/wait")
        await check(thief, "14-wrong-browser", device, "sv")
        await other.close()
        # Maria has no valid authorization.
        stack.control("approve", orderRef=stack.pending()["orderRef"], personalNumber="197003032385")
        await page.wait_for_selector("form[action$='/deny']", timeout=WAIT_MS)
        await check(page, "15-denied", device, lang)
        await context.close()
