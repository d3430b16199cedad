"""BankID login through the broker's pages, against the embedded simulator."""

import re
import time

import httpx


def form_fields(html: str) -> dict:
    return dict(re.findall(r'name="(\w+)" value="([^"]*)"', html))


def start(bb, browser, device="other"):
    rp = bb.rp()
    choice = rp.authorize(browser)
    assert choice.status_code == 200 and "BankID på en annan enhet" in choice.text
    action = re.search(r'action="(/login/bankid/[^"]+/start)"', choice.text).group(1)
    txn_id = action.split("/")[3]
    waiting = browser.post(action, data={"csrf": form_fields(choice.text)["csrf"], "device": device})
    assert waiting.status_code == 303
    page = browser.get(waiting.headers["location"])
    return rp, txn_id, page


def poll_until(browser, txn_id, predicate, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        data = browser.get(f"/login/bankid/{txn_id}/status").json()
        if predicate(data):
            return data
        time.sleep(0.3)
    raise AssertionError(f"no state matched; last {data}")


def order(bb, txn_id) -> dict:
    """The order as the broker keeps it (read straight from Redis, like a second replica)."""
    import json

    import redis

    settings = bb.broker.settings
    raw = redis.Redis.from_url(settings.store.url).get(f"{settings.store.prefix}txn:{txn_id}")
    return json.loads(raw)["upstream"]["bankid"]["order"]


def sim(browser, action, **body):
    resp = browser.post(f"/bankid-simulator/control/{action}", json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()


def finish(bb, rp, browser, txn_id):
    done = poll_until(browser, txn_id, lambda d: d.get("next"))
    assert done["next"] == f"/login/bankid/{txn_id}/finish"
    result = rp.callback(browser.get(done["next"]))
    tokens = rp.token(result["code"]).json()
    return rp.verify(tokens["id_token"])


def test_qr_login_end_to_end(bankid_broker):
    from broker.connectors.bankid.qr import qr_payload_at

    bb = bankid_broker
    with httpx.Client(base_url=bb.issuer) as browser:
        rp, txn_id, page = start(bb, browser)
        assert 'class="qr"' in page.text and "data:image/svg+xml" in page.text
        first = poll_until(browser, txn_id, lambda d: d["status"] == "pending")
        assert first["rfa"] == "RFA1" and first["qr"].startswith("data:image/svg+xml")
        state = order(bb, txn_id)
        assert state["qr_start_secret"] not in page.text + str(first)
        # The simulated app scans the current frame; it checks HMAC and freshness.
        payload = qr_payload_at(state["qr_start_token"], state["qr_start_secret"],
                                state["received_at"], time.time())
        sim(browser, "scan", qr=payload, personalNumber="199001012385")
        signing = poll_until(browser, txn_id, lambda d: d["hint"] == "userSign")
        assert signing["rfa"] == "RFA9" and signing["qr"] is None  # QR only while outstanding
        sim(browser, "approve", orderRef=state["order_ref"], personalNumber="199001012385")
        claims = finish(bb, rp, browser, txn_id)
    assert claims["sub"] == "u-anna"
    assert claims["acr"] == "http://id.elegnamnden.se/loa/1.0/loa3"
    scrape = bb.broker.metrics.exposition().decode()
    assert 'broker_bankid_hint_codes_total{hint_code="userSign"}' in scrape
    audit = (bb.tmp / "audit.log").read_text()
    assert "completionData" in audit and "199001012385" in audit


def test_autostart_on_this_device(bankid_broker):
    bb = bankid_broker
    with httpx.Client(base_url=bb.issuer) as browser:
        rp, txn_id, page = start(bb, browser, device="this")
        launch = re.search(r'id="launch" class="button primary" href="([^"]+)"', page.text).group(1)
        assert launch.startswith("/bankid-simulator/app?autostarttoken=")
        state = order(bb, txn_id)
        sim(browser, "open", autoStartToken=state["auto_start_token"])
        assert poll_until(browser, txn_id, lambda d: d["hint"] in ("started", "userSign"))["rfa"] in ("RFA14A", "RFA14B", "RFA15A", "RFA15B", "RFA9", "RFA13")
        sim(browser, "approve", orderRef=state["order_ref"], personalNumber="199001012385")
        assert finish(bb, rp, browser, txn_id)["sub"] == "u-anna"


def test_user_cancel_in_app_and_cancel_button(bankid_broker):
    bb = bankid_broker
    with httpx.Client(base_url=bb.issuer) as browser:
        _rp, txn_id, page = start(bb, browser)
        state = order(bb, txn_id)
        sim(browser, "cancel", orderRef=state["order_ref"])
        failed = poll_until(browser, txn_id, lambda d: d["status"] == "failed")
        assert failed["rfa"] == "RFA6" and "avbr" in failed["message"].lower()
        # Start again, then press Cancel: the broker cancels the order at BankID.
        csrf = form_fields(page.text)["csrf"]
        again = browser.post(f"/login/bankid/{txn_id}/start", data={"csrf": csrf, "device": "other"})
        assert again.status_code == 303
        ref = order(bb, txn_id)["order_ref"]
        back = browser.post(f"/login/bankid/{txn_id}/cancel", data={"csrf": csrf})
        assert back.status_code == 200 and "BankID på en annan enhet" in back.text
        orders = browser.get("/bankid-simulator/control/orders").json()["orders"]
        assert ref not in [o["orderRef"] for o in orders if o["status"] == "pending"]


def test_another_browser_cannot_take_over_the_order(bankid_broker):
    bb = bankid_broker
    with httpx.Client(base_url=bb.issuer) as browser, httpx.Client(base_url=bb.issuer) as thief:
        rp, txn_id, _ = start(bb, browser)
        state = order(bb, txn_id)
        for path in ("status", "wait", "finish"):
            assert thief.get(f"/login/bankid/{txn_id}/{path}").status_code == 403
        sim(browser, "approve", orderRef=state["order_ref"], personalNumber="199001012385")
        assert thief.get(f"/login/bankid/{txn_id}/finish").status_code == 403
        assert finish(bb, rp, browser, txn_id)["sub"] == "u-anna"


def test_order_starts_are_rate_limited(bankid_broker):
    bb = bankid_broker
    limits = bb.broker.settings.connectors.bankid.rate_limits
    with httpx.Client(base_url=bb.issuer) as browser:
        _rp, txn_id, page = start(bb, browser)
        csrf = form_fields(page.text)["csrf"]
        before = len(browser.get("/bankid-simulator/control/orders").json()["orders"])
        answers = [browser.post(f"/login/bankid/{txn_id}/start", data={"csrf": csrf})
                   for _ in range(limits.starts_per_transaction + 1)]
        after = len(browser.get("/bankid-simulator/control/orders").json()["orders"])
    codes = [a.status_code for a in answers]
    assert 429 in codes
    first = codes.index(429)
    assert set(codes[first:]) == {429}, "a refused start must stay refused"
    assert "För många" in answers[first].text
    # Refused starts cost nothing: no order was placed for them.
    assert after - before <= first


def test_start_failed_restarts_silently(redis, tmp_path):
    from tests.bankidweb.conftest import BankIDBroker, start_broker
    from tests.support.server import serve

    issuer, port, app = start_broker(redis, tmp_path, simulator={"start_timeout": 1},
                                     collect_interval=1)
    with serve(app, port):
        bb = BankIDBroker(issuer, app, tmp_path)
        with httpx.Client(base_url=issuer) as browser:
            rp, txn_id, _ = start(bb, browser)
            first = order(bb, txn_id)["order_ref"]
            time.sleep(2.2)
            data = poll_until(browser, txn_id, lambda d: order(bb, txn_id)["order_ref"] != first)
            assert data["status"] == "pending" and data["rfa"] == "RFA1"
            state = order(bb, txn_id)
            sim(browser, "approve", orderRef=state["order_ref"], personalNumber="199001012385")
            assert finish(bb, rp, browser, txn_id)["sub"] == "u-anna"


def test_personal_number_field_is_checked_before_any_order(redis, tmp_path):
    from tests.bankidweb.conftest import BankIDBroker, start_broker
    from tests.support.server import serve

    issuer, port, app = start_broker(redis, tmp_path, personal_number_field=True)
    with serve(app, port):
        bb = BankIDBroker(issuer, app, tmp_path)
        with httpx.Client(base_url=issuer) as browser:
            choice = bb.rp().authorize(browser)
            assert 'name="personal_number"' in choice.text
            action = re.search(r'action="(/login/bankid/[^"]+/start)"', choice.text).group(1)
            csrf = form_fields(choice.text)["csrf"]
            for bad, why in (("199001012384", "check digit"), ("19901301-2385", "real date"),
                             ("12345", "12 digits")):
                page = browser.post(action, data={"csrf": csrf, "device": "other",
                                                  "personal_number": bad})
                assert page.status_code == 400 and why in page.text
            assert browser.get("/bankid-simulator/control/orders").json()["orders"] == []
            ok = browser.post(action, data={"csrf": csrf, "device": "other",
                                            "personal_number": "19900101-2385"})
            assert ok.status_code == 303
            orders = browser.get("/bankid-simulator/control/orders").json()["orders"]
            assert [o["requiredPersonalNumber"] for o in orders] == ["199001012385"]
