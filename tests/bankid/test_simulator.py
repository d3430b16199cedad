"""The simulator's RP API against the reference: validation, state machine, timings."""

import base64
import json

import httpx
import pytest

from broker.connectors.bankid.qr import qr_payload

IP = "192.0.2.5"
ANNA = "199001012385"
ERIK = "198502022398"


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


async def post(raw, endpoint, body, content_type="application/json"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await raw.post(f"/rp/v6.0/{endpoint}", content=data,
                          headers={"Content-Type": content_type} if content_type else {})


async def ctl(raw, path, body=None):
    return await raw.post(f"/control/{path}", json=body or {})


async def start(raw, **extra):
    r = await post(raw, "auth", {"endUserIp": IP, **extra})
    assert r.status_code == 200, r.text
    return r.json()


async def collect(raw, ref):
    return await post(raw, "collect", {"orderRef": ref})


def err(r):
    return r.status_code, r.json()["errorCode"], r.json()["details"]


# -- transport rules ----------------------------------------------------------------------


async def test_only_post(raw):
    r = await raw.get("/rp/v6.0/auth")
    assert r.status_code == 405 and r.json()["errorCode"] == "methodNotAllowed"


async def test_unknown_path_is_404(raw):
    r = await post(raw, "identify", {"endUserIp": IP})
    assert r.status_code == 404 and r.json()["errorCode"] == "notFound"


@pytest.mark.parametrize("ct", ["application/json; charset=UTF-8", "text/plain", None])
async def test_content_type_must_be_exact(raw, ct):
    r = await post(raw, "auth", {"endUserIp": IP}, content_type=ct)
    assert r.status_code == 415 and r.json()["errorCode"] == "unsupportedMediaType"


async def test_non_json_body(raw):
    r = await post(raw, "auth", b"endUserIp=1.2.3.4")
    assert err(r)[:2] == (400, "invalidParameters")


async def test_success_answers_are_json_and_cancel_is_empty_object(raw):
    order = await start(raw)
    assert set(order) == {"orderRef", "autoStartToken", "qrStartToken", "qrStartSecret"}
    r = await post(raw, "cancel", {"orderRef": order["orderRef"]})
    assert r.status_code == 200 and r.json() == {}
    assert r.headers["content-type"] == "application/json"


# -- field validation (details strings from reference §5) ---------------------------------


@pytest.mark.parametrize(
    ("endpoint", "body", "details"),
    [
        ("auth", {}, "Invalid endUserIp"),
        ("auth", {"endUserIp": "999.1.1.1"}, "Invalid endUserIp"),
        ("auth", {"endUserIp": "localhost"}, "Invalid endUserIp"),
        ("auth", {"endUserIp": IP, "requirement": {"personalNumber": "19900101"}},
         "Incorrect personalNumber"),
        ("auth", {"endUserIp": IP, "requirement": {"personalNumber": "19900101123X"}},
         "Incorrect personalNumber"),
        ("auth", {"endUserIp": IP, "requirement": {"cardReader": "class3"}}, "Invalid requirement"),
        ("auth", {"endUserIp": IP, "requirement": {"risk": "low"}}, "Invalid requirement"),
        ("auth", {"endUserIp": IP, "requirement": {"pinCode": "yes"}}, "Invalid requirement"),
        ("auth", {"endUserIp": IP, "requirement": {"certificatePolicies": ["1.2.*"]}},
         "Invalid requirement"),
        ("auth", {"endUserIp": IP, "userVisibleData": "not base64!"}, "Invalid userVisibleData"),
        ("auth", {"endUserIp": IP, "userVisibleData": ""}, "Invalid userVisibleData"),
        ("auth", {"endUserIp": IP, "userVisibleData": b64("x" * 1200)}, "Invalid userVisibleData"),
        ("auth", {"endUserIp": IP, "userNonVisibleData": b64("x" * 1200)},
         "Invalid userNonVisibleData"),
        ("auth", {"endUserIp": IP, "userVisibleDataFormat": "simpleMarkdownV1"},
         "Invalid userVisibleDataFormat"),
        ("auth", {"endUserIp": IP, "userVisibleData": b64("x"), "userVisibleDataFormat": "html"},
         "Invalid userVisibleDataFormat"),
        ("auth", {"endUserIp": IP, "returnUrl": "x" * 513}, "Invalid returnUrl"),
        ("auth", {"endUserIp": IP, "web": {"userAgent": "a"}, "app": {"deviceOS": "IOS 17"}},
         "Only one of web and app may be given"),
        ("auth", {"endUserIp": IP, "web": {}}, "Invalid web"),
        ("auth", {"endUserIp": IP, "web": {"userAgent": "a" * 257}}, "Invalid web"),
        ("auth", {"endUserIp": IP, "web": {"referringDomain": "Bad_Domain"}}, "Invalid web"),
        ("auth", {"endUserIp": IP, "app": {"deviceOs": "IOS"}}, "Invalid app"),
        ("auth", {"endUserIp": IP, "enduserip": IP}, "Invalid request"),
        ("sign", {"endUserIp": IP}, "Invalid userVisibleData"),
        ("phone/auth", {"personalNumber": "1990", "callInitiator": "user"},
         "Incorrect personalNumber"),
        ("phone/auth", {"personalNumber": ANNA, "callInitiator": "rp"}, "Incorrect callInitiator"),
        ("phone/auth", {"personalNumber": ANNA}, "Incorrect callInitiator"),
        ("phone/auth", {"personalNumber": ANNA, "callInitiator": "RP", "endUserIp": IP},
         "Invalid request"),
        ("phone/sign", {"personalNumber": ANNA, "callInitiator": "user"}, "Invalid userVisibleData"),
        ("collect", {}, "Invalid request"),
        ("collect", {"orderRef": "00000000-0000-0000-0000-000000000000"}, "No such order"),
        ("cancel", {"orderRef": "00000000-0000-0000-0000-000000000000"}, "No such order"),
    ],
)
async def test_validation_details(raw, endpoint, body, details):
    assert err(await post(raw, endpoint, body)) == (400, "invalidParameters", details)


async def test_limits_accept_the_maximum(raw):
    await start(raw, userVisibleData=b64("x" * 1125))  # exactly 1500 base64 characters
    r = await post(raw, "sign", {"endUserIp": IP, "userVisibleData": b64("x" * 30_000)})
    assert r.status_code == 200
    await start(raw, requirement={"cardReader": "class2", "certificatePolicies": ["1.2.752.78.*"]},
                web={"userAgent": "a" * 256, "referringDomain": "xn--kommun-5wa.se"})
    await start(raw, app={"appIdentifier": "se.kommun.app", "deviceOS": "IOS 17.1"})


# -- state machine ------------------------------------------------------------------------


async def test_collect_once_then_no_such_order(raw):
    order = await start(raw)
    assert (await ctl(raw, "approve", {"orderRef": order["orderRef"]})).status_code == 200
    r = await collect(raw, order["orderRef"])
    assert r.json()["status"] == "complete" and "hintCode" not in r.json()
    assert err(await collect(raw, order["orderRef"])) == (400, "invalidParameters", "No such order")


async def test_failed_result_is_also_collected_once(raw):
    order = await start(raw)
    await ctl(raw, "cancel", {"orderRef": order["orderRef"]})  # the person cancels in the app
    assert (await collect(raw, order["orderRef"])).json()["hintCode"] == "userCancel"
    assert err(await collect(raw, order["orderRef"]))[2] == "No such order"


async def test_cancel_twice_and_cancel_finished(raw):
    order = await start(raw)
    assert (await post(raw, "cancel", {"orderRef": order["orderRef"]})).status_code == 200
    assert err(await post(raw, "cancel", {"orderRef": order["orderRef"]}))[2] == "No such order"
    done = await start(raw)
    await ctl(raw, "approve", {"orderRef": done["orderRef"]})
    assert err(await post(raw, "cancel", {"orderRef": done["orderRef"]}))[2] == "No such order"
    assert (await collect(raw, done["orderRef"])).json()["status"] == "complete"


async def test_already_in_progress_for_phone_and_requirement(raw):
    r = await post(raw, "phone/auth", {"personalNumber": ANNA, "callInitiator": "user"})
    assert set(r.json()) == {"orderRef"}
    r2 = await post(raw, "auth", {"endUserIp": IP, "requirement": {"personalNumber": ANNA}})
    assert err(r2) == (400, "alreadyInProgress", "Order already in progress for pno")
    other = await start(raw, requirement={"personalNumber": ERIK})  # another person is fine
    assert other["orderRef"]


async def test_already_in_progress_can_keep_existing(make_sim):
    app = make_sim(already_in_progress_cancels_existing=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as raw:
        first = await start(raw, requirement={"personalNumber": ANNA})
        r = await post(raw, "auth", {"endUserIp": IP, "requirement": {"personalNumber": ANNA}})
        assert r.status_code == 400
        assert (await collect(raw, first["orderRef"])).json()["status"] == "pending"


async def test_start_failed_after_30_seconds_unpicked(raw, clock):
    order = await start(raw)
    clock.advance(29.9)
    assert (await collect(raw, order["orderRef"])).json()["hintCode"] == "outstandingTransaction"
    clock.advance(0.2)
    r = (await collect(raw, order["orderRef"])).json()
    assert (r["status"], r["hintCode"]) == ("failed", "startFailed")


async def test_expired_transaction_after_180_seconds(raw, clock):
    order = await start(raw)
    await ctl(raw, "open", {"autoStartToken": order["autoStartToken"], "personalNumber": ANNA})
    clock.advance(100)
    assert (await collect(raw, order["orderRef"])).json()["hintCode"] == "userSign"
    clock.advance(80)
    r = (await collect(raw, order["orderRef"])).json()
    assert (r["status"], r["hintCode"]) == ("failed", "expiredTransaction")


async def test_terminal_results_are_kept_only_for_the_retention(raw, clock):
    done = await start(raw)
    await ctl(raw, "approve", {"orderRef": done["orderRef"]})
    failed = await start(raw)
    await ctl(raw, "fail", {"orderRef": failed["orderRef"], "hintCode": "certificateErr"})
    clock.advance(181)  # complete: 3 min
    assert err(await collect(raw, done["orderRef"]))[2] == "No such order"
    assert (await collect(raw, failed["orderRef"])).json()["hintCode"] == "certificateErr"


async def test_newer_order_picked_up_cancels_older(raw):
    old = await start(raw)
    await ctl(raw, "open", {"autoStartToken": old["autoStartToken"], "personalNumber": ANNA})
    new = await start(raw)
    await ctl(raw, "open", {"autoStartToken": new["autoStartToken"], "personalNumber": ANNA})
    r = (await collect(raw, old["orderRef"])).json()
    assert (r["status"], r["hintCode"]) == ("failed", "cancelled")
    assert (await collect(raw, new["orderRef"])).json()["hintCode"] == "userSign"


async def test_required_personal_number_is_enforced_by_the_app(raw):
    order = await start(raw, requirement={"personalNumber": ANNA})
    await ctl(raw, "open", {"autoStartToken": order["autoStartToken"]})
    r = await ctl(raw, "select", {"orderRef": order["orderRef"], "personalNumber": ERIK})
    assert r.status_code == 403
    r = await ctl(raw, "approve", {"orderRef": order["orderRef"]})
    assert r.status_code == 200 and r.json()["personalNumber"] == ANNA


# -- QR verification by the simulated app --------------------------------------------------


async def test_qr_scan_checks_hmac_and_freshness(raw, clock):
    order = await start(raw)
    tok, sec = order["qrStartToken"], order["qrStartSecret"]
    assert (await ctl(raw, "scan", {"qr": qr_payload(tok, "wrong", 0)})).status_code == 422
    assert (await ctl(raw, "scan", {"qr": "bankid.nonsense"})).status_code == 422
    clock.advance(12)
    stale = await ctl(raw, "scan", {"qr": qr_payload(tok, sec, 1)})
    assert stale.status_code == 409 and "too old" in stale.json()["error"]
    future = await ctl(raw, "scan", {"qr": qr_payload(tok, sec, 20)})
    assert future.status_code == 409
    # A stale scan leaves the order waiting (it will end in startFailed).
    assert (await collect(raw, order["orderRef"])).json()["hintCode"] == "outstandingTransaction"
    ok = await ctl(raw, "scan", {"qr": qr_payload(tok, sec, 10)})  # 2 s behind: fine
    assert ok.status_code == 200 and ok.json()["hintCode"] == "started"
    again = await ctl(raw, "scan", {"qr": qr_payload(tok, sec, 12)})
    assert again.status_code == 409  # already picked up


# -- auto-approve, faults, client certificates ---------------------------------------------


async def test_auto_approve_after_delay(make_sim, clock):
    app = make_sim(auto_approve=ERIK, auto_approve_delay=3)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as raw:
        order = await start(raw, returnRisk=True)
        clock.advance(2)
        assert (await collect(raw, order["orderRef"])).json()["status"] == "pending"
        clock.advance(1)
        r = (await collect(raw, order["orderRef"])).json()
        assert r["status"] == "complete"
        assert r["completionData"]["user"]["personalNumber"] == ERIK
        assert r["completionData"]["risk"] == "low"
        assert r["completionData"]["bankIdIssueDate"].endswith("Z")
        # A required number wins over the auto-approve person.
        req = await start(raw, requirement={"personalNumber": ANNA})
        clock.advance(3)
        r = (await collect(raw, req["orderRef"])).json()
        assert r["completionData"]["user"]["personalNumber"] == ANNA


async def test_fault_injection_per_endpoint_and_clearing(raw):
    r = await ctl(raw, "faults", {"endpoint": "collect", "status": 429, "times": None})
    assert r.json() == {"collect": {"status": 429, "delay": 0.0, "times": None}}
    order = await start(raw)  # other endpoints unaffected
    for _ in range(2):
        r = await collect(raw, order["orderRef"])
        assert r.status_code == 429 and r.json()["errorCode"] == "tooManyRequests"
        assert r.headers["RateLimit-Remaining"] == "0"
    await raw.delete("/control/faults")
    assert (await collect(raw, order["orderRef"])).status_code == 200
    r = await ctl(raw, "faults", {"endpoint": "*", "status": 503})
    assert err(await post(raw, "cancel", {"orderRef": order["orderRef"]}))[:2] == (503, "maintenance")
    assert (await post(raw, "cancel", {"orderRef": order["orderRef"]})).status_code == 200
    assert (await ctl(raw, "faults", {"endpoint": "nope", "status": 500})).status_code == 400
    assert (await ctl(raw, "faults", {"endpoint": "auth", "status": 200})).status_code == 400


def _with_client_cert(app, pem):
    async def wrapped(scope, receive, send):
        if scope["type"] == "http" and pem is not None:
            scope = {**scope, "extensions": {**scope.get("extensions", {}),
                                             "tls": {"client_cert_chain": [pem]}}}
        await app(scope, receive, send)

    return wrapped


async def test_client_certificate_requirement_from_asgi_tls_extension(make_sim, pki):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    fp = x509.load_pem_x509_certificate(pki.client_cert_pem.encode()).fingerprint(
        hashes.SHA256()).hex()
    app = make_sim(require_client_cert=True, allowed_client_cert_sha256=(fp.upper(),))

    def client(pem):
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=_with_client_cert(app, pem)),
                                 base_url="http://s")

    async with client(None) as raw:
        r = await post(raw, "auth", {"endUserIp": IP})
        assert r.status_code == 401 and r.json()["errorCode"] == "unauthorized"
    other_pem = pki.other_p12  # not a PEM: an unreadable chain counts as no certificate
    async with client(other_pem.read_bytes().decode("latin-1")) as raw:
        assert (await post(raw, "auth", {"endUserIp": IP})).status_code == 401
    async with client(pki.client_cert_pem) as raw:
        order = await start(raw)
        assert (await collect(raw, order["orderRef"])).status_code == 200
    # An order belongs to the certificate that created it.
    app2 = make_sim()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(
            app=_with_client_cert(app2, pki.client_cert_pem)), base_url="http://s") as raw:
        order = await start(raw)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app2),
                                 base_url="http://s") as raw:
        assert err(await collect(raw, order["orderRef"]))[2] == "No such order"


async def test_control_orders_lists_without_secrets(raw):
    order = await start(raw, userVisibleData=b64("Inloggning till Lifecare"))
    listed = (await raw.get("/control/orders")).json()["orders"]
    assert listed[0]["orderRef"] == order["orderRef"]
    assert listed[0]["userVisibleData"] == "Inloggning till Lifecare"
    assert order["qrStartSecret"] not in json.dumps(listed)


async def test_simulated_time_moves_only_on_a_simulated_clock():
    import httpx

    from broker.simulators.bankid import create_simulator_app
    from broker.simulators.bankid_engine import SimulatedClock

    clock = SimulatedClock(lambda: 1000.0)
    app = create_simulator_app(clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as c:
        moved = await c.post("/control/clock", json={"advance": 10})
        assert moved.status_code == 200 and moved.json()["now"] == 1010.0
        assert (await c.post("/control/clock", json={"advance": -1})).status_code == 400
    real = create_simulator_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=real), base_url="http://s") as c:
        assert (await c.post("/control/clock", json={"advance": 10})).status_code == 409
