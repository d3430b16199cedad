"""The access administration routine in a real browser (Debian's chromium), with the
BankID simulator, a real SMTP server, SQLite and PostgreSQL, and axe-core on every page."""

from __future__ import annotations

import asyncio
import re
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from admin_support import (
    IT,
    LIFECARE_REDIRECT,
    MANAGER_A,
    MANAGER_B,
    NEW_PERSON,
    AdminBroker,
    body,
    days,
)
from axe import assert_accessible

from tests.browser.conftest import browser, chromium_path  # noqa: F401 (fixtures)
from tests.support.rp import FakeRP

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


async def approve_bankid(ab: AdminBroker, pnr: str) -> None:
    """The person's phone: approve the pending order in the simulator."""
    async with httpx.AsyncClient(base_url=ab.issuer) as sim:
        for _ in range(100):
            orders = (await sim.get("/bankid-simulator/control/orders")).json()["orders"]
            pending = [o for o in orders if o["status"] == "pending"]
            if pending:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("no pending BankID order")
        answer = await sim.post("/bankid-simulator/control/approve",
                                json={"orderRef": pending[-1]["orderRef"], "personalNumber": pnr})
        assert answer.status_code == 200, answer.text


async def log_in(page, ab: AdminBroker, pnr: str, start: str = "/admin/") -> None:
    await page.goto(ab.issuer + start)
    await page.locator("#qr").wait_for(state="visible")  # a computer: the QR code at once
    await approve_bankid(ab, pnr)


async def admin_page(browser, ab: AdminBroker, pnr: str, viewport=DESKTOP):  # noqa: F811
    context = await browser.new_context(viewport=viewport, locale="sv-SE")
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await log_in(page, ab, pnr)
    await page.wait_for_url(f"{ab.issuer}/admin/", timeout=15000)
    await assert_accessible(page)
    return context, page, errors


async def lifecare_login(browser, ab: AdminBroker, pnr: str):  # noqa: F811
    """The person logs in to Lifecare; returns the ID token's claims or the denial page."""
    rp = FakeRP(ab.issuer, "lifecare", LIFECARE_REDIRECT, "l" * 32)
    params = rp.params()
    context = await browser.new_context(locale="sv-SE")
    page = await context.new_page()
    arrived: list[str] = []

    async def at_lifecare(route):
        arrived.append(route.request.url)
        await route.fulfill(status=200, content_type="text/plain", body="Lifecare")

    await page.route("https://lifecare.example/**", at_lifecare)
    await log_in(page, ab, pnr, "/authorize?" + urlencode(params))
    for _ in range(150):  # until Lifecare got the code or the person reads the denial
        if arrived or "behörighet" in await page.title():
            break
        await asyncio.sleep(0.1)
    if not arrived:
        await assert_accessible(page)
        text = await page.locator("main").inner_text()
        await context.close()
        return None, text
    await context.close()
    query = parse_qs(urlsplit(arrived[0]).query)
    tokens = rp.token(query["code"][0]).json()
    return rp.verify(tokens["id_token"]), None


async def request_new_person(page, ab: AdminBroker, *, unit: str, clients: list[str]) -> str:
    await page.get_by_role("link", name="Begär behörighet för ny person").click()
    await assert_accessible(page)
    await page.get_by_label("Förnamn").fill("Maria")
    await page.get_by_label("Efternamn").fill("Johansson")
    await page.get_by_label("Personnummer").fill(NEW_PERSON)
    await page.get_by_label("E-postadress (arbete)").fill("maria@omsorg.example")
    await page.get_by_label("Befattning/funktion").fill("Undersköterska")
    await page.get_by_label("Användarnamn i treserva").fill("MAJO01")
    await page.get_by_label("Användarnamn i lifecare").fill("maria.j")
    await page.get_by_label("Roll").select_option(label="Undersköterska")
    await page.get_by_label("Enhet").select_option(label=unit)
    for client in clients:
        await page.get_by_label(client, exact=True).check()
    await page.get_by_role("button", name="Skicka begäran").click()
    await page.wait_for_url(re.compile(r".*/admin/requests/r-[0-9a-f]+.*"))
    assert "Begäran är skickad" in await page.locator("main").inner_text()
    await assert_accessible(page)
    return re.search(r"/admin/requests/(r-[0-9a-f]+)", page.url).group(1)


async def approve_as_it(browser, ab: AdminBroker, rid: str, reject: str | None = None):  # noqa: F811
    context, page, errors = await admin_page(browser, ab, IT)
    await page.get_by_role("link", name=re.compile(rid)).first.click()
    await assert_accessible(page)
    if reject:
        await page.get_by_label("Motivering").fill(reject)
        await page.get_by_role("button", name="Avslå").click()
        await page.wait_for_selector("text=Begäran är avslagen")
    else:
        await page.get_by_role("button", name="Godkänn").click()
        await page.wait_for_selector("text=Begäran är godkänd")
    assert await page.locator("#request-state").inner_text() == (
        "Avslagen" if reject else "Godkänd")
    await assert_accessible(page)
    assert not errors, errors
    await context.close()


async def test_request_approval_and_login_with_the_lifecare_user_name(browser, admin_broker):  # noqa: F811
    ab = admin_broker
    context, page, errors = await admin_page(browser, ab, MANAGER_A)
    rid = await request_new_person(page, ab, unit="Hemtjänst Norr", clients=["lifecare"])
    await context.close()
    await approve_as_it(browser, ab, rid)

    claims, denied = await lifecare_login(browser, ab, NEW_PERSON)
    assert denied is None, denied
    assert claims["preferred_username"] == "maria.j"
    assert claims["commissionName"] == "Undersköterska"
    # Both parties were told by mail: IT of the request, the manager of the decision
    # (and the new person that they have access).
    assert rid in body(ab.smtp.wait_for("behorighet@kommun.example")[0])
    decided = ab.smtp.wait_for("fatima@omsorg.example")[0]
    assert "godkänts" in decided["Subject"] and rid in body(decided)
    assert "Hemtjänst Norr" in body(ab.smtp.wait_for("maria@omsorg.example")[0])
    assert not errors, errors


async def test_other_organisation_403_and_rejection_grants_nothing(browser, admin_broker):  # noqa: F811
    ab = admin_broker
    context, page, _ = await admin_page(browser, ab, MANAGER_A)
    rid = await request_new_person(page, ab, unit="Hemtjänst Väster", clients=["lifecare"])
    await context.close()
    await approve_as_it(browser, ab, rid, reject="Personen ska inte ha Lifecare")
    assert "Personen ska inte ha Lifecare" in body(ab.smtp.wait_for("fatima@omsorg.example")[0])
    claims, denied = await lifecare_login(browser, ab, NEW_PERSON)
    assert claims is None and "Du saknar behörighet" in denied

    # A manager of another organisation: Anna is not theirs to see or request for.
    context, page, _ = await admin_page(browser, ab, MANAGER_B, viewport=PHONE)
    response = await page.goto(f"{ab.issuer}/admin/users/u-anna")
    assert response.status == 403
    assert "Åtkomst nekad" in await page.locator("h1").inner_text()
    await assert_accessible(page)
    response = await page.goto(f"{ab.issuer}/admin/requests/new?user=u-anna")
    assert response.status == 403
    response = await page.goto(f"{ab.issuer}/admin/requests/{rid}")
    assert response.status == 403
    await page.goto(f"{ab.issuer}/admin/users")
    assert "Anna" not in await page.locator("main").inner_text()
    await context.close()
    changes = [e for e in ab.audit() if e.get("audit") == "admin_change"]
    assert [e["action"] for e in changes] == ["request_created", "request_rejected"]


async def test_an_unreviewed_assignment_past_its_date_denies_login(browser, admin_broker):  # noqa: F811
    ab = admin_broker
    real = ab.today.value
    ab.today.value = real - days(200)  # the request was approved 200 days ago
    context, page, _ = await admin_page(browser, ab, MANAGER_A)
    rid = await request_new_person(page, ab, unit="Hemtjänst Norr", clients=["lifecare"])
    await context.close()
    await approve_as_it(browser, ab, rid)
    ab.today.value = real
    claims, denied = await lifecare_login(browser, ab, NEW_PERSON)
    assert claims is None and "Du saknar behörighet" in denied


# Accessibility does not depend on the database: SQLite only, to keep the tour short.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("who", ["manager", "it"])
async def test_every_admin_page_passes_axe_in_both_languages_and_sizes(browser, admin_broker,  # noqa: F811
                                                                       who):
    ab = admin_broker
    context, page, errors = await admin_page(browser, ab, MANAGER_A)
    rid = await request_new_person(page, ab, unit="Hemtjänst Norr", clients=["lifecare"])
    await context.close()
    pnr = MANAGER_A if who == "manager" else IT
    for viewport, languages in ((DESKTOP, ("sv", "en")), (PHONE, ("sv",))):
        context, page, errors = await admin_page(browser, ab, pnr, viewport)
        for lang in languages:
            for path in ("/admin/", "/admin/users", "/admin/users/u-anna",
                         "/admin/requests", f"/admin/requests/{rid}", "/admin/reviews",
                         "/admin/requests/new", "/admin/requests/new?user=u-anna",
                         "/admin/users/nobody"):
                sep = "&" if "?" in path else "?"
                response = await page.goto(f"{ab.issuer}{path}{sep}lang={lang}")
                # IT asks for no requests (403); nobody sees a made-up user (403).
                assert response.status in (200, 403), (path, response.status)
                assert await page.get_attribute("html", "lang") == lang
                await assert_accessible(page)
        assert not [e for e in errors if "status of 403" not in e], errors
        await context.close()
