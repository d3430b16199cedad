"""Both BankID device flows, the role picker and logout in a real browser, from the demo
RP's button to its callback page, against the embedded BankID simulator."""

import pytest

pytestmark = pytest.mark.browser


async def choose_method(page, name):
    """The chooser (BankID or SITHS-kort) comes first: the demo offers both methods."""
    await page.get_by_role("button", name=name, exact=True).click()


async def approve_in_simulator(context, base, person="Anna Andersson"):
    app = await context.new_page()
    await app.goto(f"{base}/bankid-simulator/app")
    await app.wait_for_selector("text=Pending orders (1)")
    order = app.locator("text=Inloggning till Lifecare (demo)").locator("..")
    await order.locator("select").select_option(label=next(
        o for o in await order.locator("select option").all_inner_texts() if person in o))
    await order.locator("text=Identify / sign (approve)").click()
    await app.close()


async def test_qr_flow_from_rp_button_to_callback(browser, demo):
    context = await browser.new_context()
    page = await context.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await page.goto(f"{demo}/demo-rp/")
    await page.click("text=Logga in i Lifecare (demo)")
    await choose_method(page, "BankID")  # a computer: the QR code at once
    qr = page.locator("#qr")
    await qr.wait_for(state="visible")
    first = await qr.get_attribute("src")
    await page.wait_for_timeout(2300)
    assert await qr.get_attribute("src") != first, "the QR code must animate every second"
    assert "Starta BankID-appen" in await page.locator("#status").inner_text()
    await approve_in_simulator(context, demo)
    await page.wait_for_url("**/demo-rp/callback**", timeout=15000)
    assert await page.locator("#role").inner_text() == "Sjuksköterska"
    assert "199001012385" in await page.locator("#id-token").inner_text()
    assert not errors, errors  # nothing blocked by the Content-Security-Policy
    # Logout through the broker returns to the RP.
    await page.click("#logout")
    await page.wait_for_url(f"{demo}/demo-rp/", timeout=10000)
    await context.close()


async def test_autostart_flow_on_this_computer(browser, demo):
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(f"{demo}/demo-rp/")
    await page.click("text=Logga in i Lifecare (demo)")
    await choose_method(page, "BankID")
    await page.click("text=BankID på den här datorn")
    launch = page.locator("#launch")
    await launch.wait_for()
    assert await launch.inner_text() == "Starta BankID-appen"  # RFA18
    href = await launch.get_attribute("href")
    assert "autostarttoken=" in href
    # The app is a window of its own (here the simulated app's page); this page polls.
    app = await context.new_page()
    await app.goto(demo + href)
    await app.locator("text=Identify / sign (approve)").first.click()
    await page.wait_for_url("**/demo-rp/callback**", timeout=15000)
    assert await page.locator("#role").inner_text() == "Sjuksköterska"
    await context.close()


async def test_picker_is_keyboard_usable(browser, demo):
    context = await browser.new_context(locale="en-GB")
    page = await context.new_page()
    await page.goto(f"{demo}/demo-rp/")
    await page.click("text=Logga in i Lifecare (demo)")
    await choose_method(page, "BankID")  # a computer: the QR code at once
    await page.locator("#qr").wait_for(state="visible")
    await approve_in_simulator(context, demo, person="Erik Eriksson")
    await page.wait_for_selector("text=Välj roll och enhet")
    # Keyboard only: the first choice has focus order first; arrow down selects the next.
    await page.focus("#a1")
    await page.keyboard.press("ArrowDown")
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/demo-rp/callback**", timeout=15000)
    assert await page.locator("#role").inner_text() == "Enhetschef"
    await context.close()


async def test_no_authorization_page_then_access_denied(browser, demo):
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(f"{demo}/demo-rp/")
    await page.click("text=Logga in i Lifecare (demo)")
    await choose_method(page, "BankID")  # a computer: the QR code at once
    await page.locator("#qr").wait_for(state="visible")
    await approve_in_simulator(context, demo, person="Maria Johansson")
    await page.wait_for_selector("text=Du saknar behörighet")
    await page.get_by_role("button", name="Tillbaka").click()
    await page.wait_for_url("**/demo-rp/callback**")
    assert "access_denied" in await page.content()
    await context.close()
