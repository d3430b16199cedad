"""BankID as people use it, in chromium (issue 19): a phone and a computer, Swedish and
English, a person who spends 10 s in the app, reloads, switches language, has no
JavaScript, or only a keyboard.

Time in the app is simulated time: the test moves the clock that the simulator and the
broker's BankID connector share (`SimulatedClock`) by 10 s, so both see a person who took
10 s - the collect throttle lets the next request collect, the order ages - without the
suite waiting 10 s. Everything the browser does runs in real time, and every wait is on a
condition (a URL, a text) with a generous bound for a loaded 2-core machine.
"""

import re

import pytest

from tests.bankid.user_agents import UA

pytestmark = pytest.mark.browser
WAIT_MS = 20_000


async def open_login(browser, stack, device, lang="sv", ua="ios_safari", **options):
    """A new browser at the demo RP, pressing its login button; in English when asked."""
    stack.control("reset")  # the simulated BankID holds this test's orders only
    context = await browser.new_context(**stack.context_options(device, ua, **options))
    page = await context.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.errors = errors
    await page.goto(f"{stack.base}/demo-rp/")
    await page.click("#login")
    await page.wait_for_url("**/login/**", timeout=WAIT_MS)
    if lang == "en":
        await page.click("a.lang")
        await page.wait_for_selector("html[lang=en]", timeout=WAIT_MS)
    return context, page


def txn_of(url: str) -> str:
    return re.search(r"/login/(?:bankid/)?([A-Za-z0-9_-]{20,})", url).group(1)


async def logged_in(page, role="Sjukskoterska"):
    await page.wait_for_url("**/demo-rp/callback**", timeout=WAIT_MS)
    assert await page.locator("#role").inner_text() == role


TEXTS = {
    "sv": {"this": "BankID på den här enheten", "other": "BankID på en annan enhet",
           "start": "Starta BankID-appen", "computer": "BankID på den här datorn",
           "scan": "Starta BankID-appen och läs av QR-koden.",
           "code": "Skriv in din säkerhetskod i BankID-appen", "more": "Jag behöver mer tid",
           "back": "Logga in i Lifecare igen", "continue": "Fortsätt", "pick": "Välj roll och enhet"},
    "en": {"this": "BankID on this device", "other": "BankID on another device",
           "start": "Start the BankID app", "computer": "BankID on this computer",
           "scan": "Start your BankID app and scan the QR code.",
           "code": "Enter your security code in the BankID app", "more": "I need more time",
           "back": "Log in to Lifecare again", "continue": "Continue", "pick": "Choose role and unit"},
}


@pytest.mark.parametrize("lang", ["sv", "en"])
async def test_same_device_on_a_phone_with_ten_seconds_in_the_app(browser, people, lang):
    context, page = await open_login(browser, people, "phone", lang)
    t = TEXTS[lang]
    # RFA20, and one tap from it to the app.
    await page.get_by_role("button", name=t["this"]).click()
    await page.wait_for_url("**/bankid-simulator/app?autostarttoken=**", timeout=WAIT_MS)
    order = people.pending()
    assert order["via"] == "autostart" and order["returnUrl"].startswith(
        f"{people.base}/login/bankid/")
    # The person picks their BankID, reads, types the security code: 10 s in the app.
    people.control("select", orderRef=order["orderRef"], personalNumber="199001012385")
    people.clock.advance(10)
    await page.get_by_role("button", name="Identify / sign (approve)").click()
    # The app sends Safari back to returnUrl; that request collects and goes on.
    await logged_in(page)
    assert not [o for o in people.orders() if o["orderRef"] == order["orderRef"]]
    assert not page.errors, page.errors
    await context.close()


@pytest.mark.parametrize("lang", ["sv", "en"])
async def test_same_device_on_a_computer_polls_while_the_person_is_in_the_app(browser, people,
                                                                             lang):
    context, page = await open_login(browser, people, "desktop", lang)
    t = TEXTS[lang]
    await page.locator("#qr").wait_for(state="visible", timeout=WAIT_MS)  # the QR at once
    await page.get_by_role("button", name=t["computer"]).click()
    launch = page.get_by_role("link", name=t["start"])
    href = await launch.get_attribute("href")
    # The BankID Security App is its own window: the page stays and polls.
    app = await context.new_page()
    await app.goto(people.base + href)
    order = people.pending()
    people.control("select", orderRef=order["orderRef"], personalNumber="199001012385")
    await page.wait_for_function(
        "t => document.getElementById('status').textContent.indexOf(t) === 0", arg=t["code"],
        timeout=WAIT_MS)
    people.clock.advance(10)
    await app.get_by_role("button", name="Identify / sign (approve)").click()
    await logged_in(page)
    assert not page.errors, page.errors
    await context.close()


@pytest.mark.parametrize(("ua", "scheme"), [
    ("ios_chrome", "googlechrome://"),   # http on the test issuer: googlechrome://, not -s
    ("ios_firefox", "firefox://open-url?url="),
    ("ios_edge", "microsoft-edge-http://"),
    ("ios_instagram", None),
    ("android_chrome", None),
])
async def test_the_app_returns_to_the_browser_that_started(browser, people, ua, scheme):
    context, page = await open_login(browser, people, "phone", ua=ua)
    txn_id = txn_of(page.url)
    await page.get_by_role("button", name="BankID på den här enheten").click()
    await page.wait_for_url("**/bankid-simulator/app?autostarttoken=**", timeout=WAIT_MS)
    order = people.pending()
    people.clock.advance(10)
    await page.get_by_role("button", name="Identify / sign (approve)").click()
    if scheme is None:
        # No returnUrl: the OS (Android) or iOS's "◀ app" breadcrumb returns to the tab,
        # whose address the tap made the wait page's. (The simulated app is a page in that
        # very tab, so the test goes to that address; the real app leaves the tab alone
        # and the page's script reloads it when it becomes visible.)
        assert order["returnUrl"] is None
        await page.wait_for_selector("text=Approved as", timeout=WAIT_MS)
        await page.goto(f"{people.base}/login/bankid/{txn_id}/wait")
    else:
        # The browser's own scheme: iOS hands it to that browser, which opens the page.
        assert order["returnUrl"].startswith(scheme)
        if scheme.startswith("firefox"):
            from urllib.parse import unquote

            target = unquote(order["returnUrl"][len(scheme):])
        else:
            target = "http://" + order["returnUrl"][len(scheme):]
        assert target.startswith(f"{people.base}/login/bankid/") and "nonce=" in target
        await page.goto(target)
    await logged_in(page)
    # Coming back never opened the app again.
    assert "bankid-simulator" not in page.url
    await context.close()


async def test_no_javascript_qr(browser, people):
    context, page = await open_login(browser, people, "desktop", java_script_enabled=False)
    qr = page.locator("#qr")
    await qr.wait_for(state="visible", timeout=WAIT_MS)
    first = await qr.get_attribute("src")
    # The page refreshes itself with the current frame.
    await page.wait_for_function(
        "s => document.getElementById('qr') && document.getElementById('qr').src !== s",
        arg=first, timeout=WAIT_MS)
    txn_id = txn_of(page.url)
    people.control("scan", qr=people.qr_now(txn_id), personalNumber="199001012385")
    await page.wait_for_selector("#qr[hidden]", state="attached", timeout=WAIT_MS)
    people.control("approve", orderRef=people.pending()["orderRef"])
    await logged_in(page)
    await context.close()


async def test_no_javascript_same_device_on_a_phone(browser, people):
    context, page = await open_login(browser, people, "phone", java_script_enabled=False)
    await page.get_by_role("button", name="BankID på den här enheten").click()
    # Without the script: the wait page with BankID's button (RFA18), a second tap.
    await page.get_by_role("link", name="Starta BankID-appen").click()
    await page.wait_for_url("**/bankid-simulator/app?autostarttoken=**", timeout=WAIT_MS)
    people.clock.advance(10)
    await page.get_by_role("button", name="Identify / sign (approve)").click()
    await logged_in(page)
    await context.close()


@pytest.mark.parametrize("device", ["desktop", "phone"])
async def test_reload_and_language_switch_while_the_qr_shows(browser, people, device):
    context, page = await open_login(browser, people, device)
    if device == "phone":
        await page.get_by_role("button", name="BankID på en annan enhet").click()
    qr = page.locator("#qr")
    await qr.wait_for(state="visible", timeout=WAIT_MS)
    ref = people.pending()["orderRef"]
    await page.reload()
    await qr.wait_for(state="visible", timeout=WAIT_MS)
    await page.click("a.lang")  # "In English"
    await page.wait_for_selector("html[lang=en]", timeout=WAIT_MS)
    await qr.wait_for(state="visible", timeout=WAIT_MS)
    await page.wait_for_function(
        "() => document.getElementById('status').textContent.indexOf('Start your BankID app') === 0",
        timeout=WAIT_MS)
    # Same order, still alive at BankID: nothing was cancelled on the way.
    assert people.pending()["orderRef"] == ref
    txn_id = txn_of(page.url)
    people.control("scan", qr=people.qr_now(txn_id), personalNumber="199001012385")
    await qr.wait_for(state="hidden", timeout=WAIT_MS)  # hidden once scanned
    people.clock.advance(10)
    people.control("approve", orderRef=ref)
    await logged_in(page)
    await context.close()


async def test_qr_hidden_after_a_failure_and_try_again_shows_a_new_one(browser, people):
    context, page = await open_login(browser, people, "desktop")
    qr = page.locator("#qr")
    await qr.wait_for(state="visible", timeout=WAIT_MS)
    first = people.pending()["orderRef"]
    people.control("fail", orderRef=first, hintCode="userCancel")
    await page.get_by_role("button", name="Försök igen").wait_for(timeout=WAIT_MS)
    assert not await qr.is_visible()
    assert "Åtgärden avbruten." in await page.locator("#status").inner_text()
    await page.get_by_role("button", name="Försök igen").click()
    await qr.wait_for(state="visible", timeout=WAIT_MS)  # the same way again: a QR code
    assert people.pending()["orderRef"] != first
    await context.close()


@pytest.mark.parametrize("lang", ["sv", "en"])
async def test_expiry_warning_more_time_and_the_way_back(browser, people, lang):
    t = TEXTS[lang]
    people.control("reset")
    context = await browser.new_context(**people.context_options("desktop"))
    page = await context.new_page()
    await page.clock.install()
    await page.goto(f"{people.base}/demo-rp/")
    await page.click("#login")
    await page.locator("#qr").wait_for(state="visible", timeout=WAIT_MS)
    if lang == "en":
        await page.click("a.lang")
        await page.wait_for_selector("html[lang=en]", timeout=WAIT_MS)
    txn_id = txn_of(page.url)
    # Eight minutes on the page: two minutes before the login expires, a warning.
    await page.clock.fast_forward("08:05")
    more = page.get_by_role("button", name=t["more"])
    await more.wait_for(timeout=WAIT_MS)
    assert await page.locator("#expiry").get_attribute("role") == "alert"
    before = people.txn_record(txn_id)["expires"]
    await more.click()
    await more.wait_for(state="detached", timeout=WAIT_MS)
    assert people.txn_record(txn_id)["expires"] >= before
    # The login ends anyway (here: gone from the store): the page shows the way back.
    people.end_txn(txn_id)
    back = page.get_by_role("link", name=t["back"])
    await back.wait_for(timeout=WAIT_MS)
    await back.click()
    await page.locator("#qr").wait_for(state="visible", timeout=WAIT_MS)  # a new login
    assert txn_of(page.url) != txn_id
    await context.close()


async def test_keyboard_only_qr_and_picker(browser, people):
    context, page = await open_login(browser, people, "desktop")
    await page.locator("#qr").wait_for(state="visible", timeout=WAIT_MS)
    # Every control of the QR page is reachable with Tab, in reading order, visibly focused.
    reached = []
    for _ in range(8):
        await page.keyboard.press("Tab")
        reached.append(await page.evaluate(
            "() => { const e = document.activeElement; if (e === document.body) return ['', '', 0];"
            " const s = getComputedStyle(e);"
            " return [e.textContent.trim(), s.outlineStyle, parseFloat(s.outlineWidth)]; }"))
    names = [r[0] for r in reached]
    for name in ("In English", "BankID på den här datorn", "Avbryt", "Tillbaka till Lifecare"):
        assert name in names, names
    assert all(style != "none" and width >= 2 for _, style, width in reached if _), reached
    txn_id = txn_of(page.url)
    people.control("scan", qr=people.qr_now(txn_id), personalNumber="198502022398")
    people.control("approve", orderRef=people.pending()["orderRef"])
    await page.wait_for_selector("text=Välj roll och enhet", timeout=WAIT_MS)
    # Nothing chosen for the person; the keyboard chooses.
    assert await page.locator("input[type=radio]:checked").count() == 0
    await page.keyboard.press("Tab")
    while await page.evaluate("() => document.activeElement.type") != "radio":
        await page.keyboard.press("Tab")
    await page.keyboard.press("ArrowDown")  # selects the second: Enhetschef
    await page.keyboard.press("Enter")
    await logged_in(page, "Enhetschef")
    # Next time the picker has that choice ready: Enter alone.
    await page.goto(f"{people.base}/demo-rp/login?prompt=select_account")
    await page.wait_for_selector("text=Välj roll och enhet", timeout=WAIT_MS)
    assert await page.locator("input[type=radio]:checked").get_attribute("value") == "a-e-2"
    await page.keyboard.press("Tab")
    while await page.evaluate("() => document.activeElement.type") != "radio":
        await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")
    await logged_in(page, "Enhetschef")
    await context.close()


@pytest.fixture(scope="module")
def people_pnr(redis, tmp_path_factory):
    from tests.browser.conftest import people_stack
    from tests.support.server import serve

    stack, port = people_stack(redis, tmp_path_factory.mktemp("pnr"), personal_number_field=True)
    with serve(stack.app, port):
        yield stack


async def test_personal_number_field_in_swedish(browser, people_pnr):
    stack = people_pnr
    context, page = await open_login(browser, stack, "phone")
    field = page.get_by_label("Personnummer (valfritt)")
    await field.fill("900101-2384")  # a wrong check digit
    await page.get_by_role("button", name="BankID på en annan enhet").click()
    error = page.locator("#pnr-error")
    await error.wait_for(timeout=WAIT_MS)
    assert await error.inner_text() == "Personnumret stämmer inte. Kontrollera den sista siffran."
    assert await field.input_value() == "900101-2384"  # kept, to correct
    assert await field.get_attribute("aria-invalid") == "true"
    assert "pnr-error" in await field.get_attribute("aria-describedby")
    assert await page.evaluate("() => document.activeElement.id") == "pnr"
    assert not stack.orders()  # no order for a number that cannot be right
    await field.fill("900101-2385")  # the 10-digit form people write
    await page.get_by_role("button", name="BankID på en annan enhet").click()
    await page.locator("#qr").wait_for(state="visible", timeout=WAIT_MS)
    assert stack.pending()["requiredPersonalNumber"] == "199001012385"
    await context.close()


def test_user_agents_are_the_ones_the_rules_know():
    from broker.connectors.bankid.launch import detect

    assert detect(UA["ios_safari"]).name == "safari" and detect(UA["android_chrome"]).mobile


async def test_try_again_after_a_timeout_on_a_phone_opens_the_app_at_once(browser, people):
    context, page = await open_login(browser, people, "phone")
    txn_id = txn_of(page.url)
    await page.get_by_role("button", name="BankID på den här enheten").click()
    await page.wait_for_url("**/bankid-simulator/app?autostarttoken=**", timeout=WAIT_MS)
    first = people.pending()
    people.control("fail", orderRef=first["orderRef"], hintCode="expiredTransaction")
    await page.goto(f"{people.base}/login/bankid/{txn_id}/wait")  # back in the browser
    retry = page.get_by_role("button", name="Försök igen")
    await retry.wait_for(timeout=WAIT_MS)
    assert "BankID-appen svarar inte" in await page.locator("#status").inner_text()  # RFA8
    await retry.click()  # one tap: a new order, and the app opens with it
    await page.wait_for_url("**/bankid-simulator/app?autostarttoken=**", timeout=WAIT_MS)
    second = people.pending()
    assert second["orderRef"] != first["orderRef"] and second["via"] == "autostart"
    await context.close()


async def test_the_pages_need_no_fetch(browser, people):
    """The OIDF conformance suite's HtmlUnit has no fetch: the script must not need it."""
    people.control("reset")
    context = await browser.new_context(**people.context_options("desktop"))
    await context.add_init_script("delete window.fetch;")
    page = await context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(f"{people.base}/demo-rp/")
    await page.click("#login")
    qr = page.locator("#qr")
    await qr.wait_for(state="visible", timeout=WAIT_MS)
    first = await qr.get_attribute("src")
    await page.wait_for_function(  # animated by the script's polling, not a reload
        "s => document.getElementById('qr').src !== s", arg=first, timeout=WAIT_MS)
    assert not await page.locator("meta[http-equiv=refresh]").count()  # the script took over
    people.control("approve", orderRef=people.pending()["orderRef"])
    await logged_in(page)
    assert not errors, errors
    await context.close()
