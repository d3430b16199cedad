"""The simulator's test app page: what a person does with a browser."""

import json
import re

from broker.connectors.bankid.qr import qr_payload

IP = "192.0.2.5"


async def start(raw, **extra):
    r = await raw.post("/rp/v6.0/auth", content=json.dumps({"endUserIp": IP, **extra}),
                       headers={"Content-Type": "application/json"})
    return r.json()


async def state(raw, ref):
    r = await raw.post("/rp/v6.0/collect", content=json.dumps({"orderRef": ref}),
                       headers={"Content-Type": "application/json"})
    return r.json()


async def test_page_is_strict_csp_friendly_and_lists_orders(raw):
    order = await start(raw)
    r = await raw.get("/app")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    html = r.text
    assert order["orderRef"] in html
    assert "<script>" not in html and "style=" not in html and "<style" not in html
    assert order["qrStartSecret"] not in html
    for asset in re.findall(r'(?:href|src)="(/app/static/[^"]+)"', html):
        a = await raw.get(asset)
        assert a.status_code == 200 and a.headers["content-type"].split(";")[0] in (
            "text/css", "text/javascript")


async def test_scan_form_and_approve_button(raw):
    order = await start(raw)
    frame = qr_payload(order["qrStartToken"], order["qrStartSecret"], 0)
    r = await raw.post("/app/action", data={"action": "scan", "qr": frame,
                                            "personalNumber": "197003032385"})
    assert r.status_code == 303 and "scanned" in r.headers["location"]
    assert (await state(raw, order["orderRef"]))["hintCode"] == "userSign"
    r = await raw.post("/app/action", data={"action": "approve", "orderRef": order["orderRef"],
                                            "personalNumber": "197003032385"})
    assert r.status_code == 303
    done = await state(raw, order["orderRef"])
    assert done["completionData"]["user"]["name"] == "Maria Johansson"


async def test_stale_qr_shows_an_error(raw, clock):
    order = await start(raw)
    clock.advance(20)
    frame = qr_payload(order["qrStartToken"], order["qrStartSecret"], 0)
    r = await raw.post("/app/action", data={"action": "scan", "qr": frame})
    assert "error=1" in r.headers["location"]
    page = await raw.get(r.headers["location"])
    assert "too old" in page.text


async def test_autostart_link_opens_the_order_and_returns_to_return_url(raw):
    order = await start(raw, returnUrl="https://login.example.se/bankid/return?n=abc")
    r = await raw.get("/app", params={"autostarttoken": order["autoStartToken"],
                                      "redirect": "null"})
    assert r.status_code == 200 and "Order opened on this device" in r.text
    assert (await state(raw, order["orderRef"]))["hintCode"] == "started"
    r = await raw.post("/app/action", data={"action": "approve", "orderRef": order["orderRef"],
                                            "personalNumber": "199001012385"})
    assert r.status_code == 303
    assert r.headers["location"] == "https://login.example.se/bankid/return?n=abc"


async def test_unknown_token_and_refusals(raw):
    r = await raw.get("/app", params={"autostarttoken": "nope"})
    assert r.status_code == 404
    for action, hint in [("cancel", "userCancel"), ("block", "certificateErr"),
                         ("oldapp", "notSupportedByUserApp")]:
        order = await start(raw)
        await raw.post("/app/action", data={"action": action, "orderRef": order["orderRef"]})
        got = await state(raw, order["orderRef"])
        assert (got["status"], got["hintCode"]) == ("failed", hint)


async def test_mounted_under_a_prefix_links_stay_inside(sim_app):
    import httpx
    from starlette.applications import Starlette
    from starlette.routing import Mount

    outer = Starlette(routes=[Mount("/bankid-sim", app=sim_app)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=outer),
                                 base_url="http://s") as c:
        r = await c.get("/bankid-sim/app")
        assert r.status_code == 200
        assert 'href="/bankid-sim/app/static/app.css"' in r.text
        assert 'action="/bankid-sim/app/action"' in r.text
