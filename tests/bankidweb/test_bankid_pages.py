"""BankID login through the broker's pages, against the embedded simulator (HTTP level;
tests/browser drives the same pages in chromium)."""

import json
import re
import time

import httpx
import redis as redis_lib

IPHONE_SAFARI = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
                 "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
ANDROID = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/126.0.0.0 Mobile Safari/537.36")
ANNA, ERIK = "199001012385", "198502022398"


def form_fields(html: str) -> dict:
    return dict(re.findall(r'name="(\w+)" value="([^"]*)"', html))


def begin(bb, browser, **params):
    """From the RP's authorization request to the first BankID page (following redirects):
    the QR page on a computer, the device choice on a phone."""
    rp = bb.rp()
    page = rp.authorize(browser, **params)
    assert page.status_code == 200, page.text[:300]
    txn_id = re.search(r"/login/bankid/([^/]+)/", page.text).group(1)
    return rp, txn_id, page


def choose(browser, txn_id, page, device, **extra):
    answer = browser.post(f"/login/bankid/{txn_id}/start",
                          data={"csrf": form_fields(page.text)["csrf"], "device": device, **extra})
    assert answer.status_code == 303, answer.text[:300]
    return browser.get(answer.headers["location"])


def poll_until(browser, txn_id, predicate, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        data = browser.get(f"/login/bankid/{txn_id}/status").json()
        if predicate(data):
            return data
        time.sleep(0.3)
    raise AssertionError(f"no state matched; last {data}")


def txn_record(bb, txn_id) -> dict | None:
    """The transaction as the broker keeps it (read straight from Redis, like a replica)."""
    settings = bb.broker.settings
    raw = redis_lib.Redis.from_url(settings.store.url).get(f"{settings.store.prefix}txn:{txn_id}")
    return json.loads(raw) if raw else None


def order(bb, txn_id) -> dict:
    return txn_record(bb, txn_id)["upstream"]["bankid"]["order"]


def sim(browser, action, **body):
    resp = browser.post(f"/bankid-simulator/control/{action}", json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()


def sim_order(browser, ref) -> dict:
    return next(o for o in browser.get("/bankid-simulator/control/orders").json()["orders"]
                if o["orderRef"] == ref)


def finish(rp, browser, response):
    """From the response that hands the identity on, through to the ID token."""
    result = rp.callback(rp.follow(browser, response))
    return rp.verify(rp.token(result["code"]).json()["id_token"])


def test_qr_login_end_to_end(bankid_broker):
    from broker.connectors.bankid.qr import qr_payload_at

    bb = bankid_broker
    with httpx.Client(base_url=bb.issuer) as browser:
        rp, txn_id, page = begin(bb, browser)
        # A computer gets the QR code at once, with "BankID på den här datorn" beside it.
        assert 'class="qr"' in page.text and "data:image/svg+xml" in page.text
        assert "BankID på den här datorn" in page.text
        assert 'alt="QR-kod för BankID. Starta BankID-appen och läs av koden."' in page.text
        first = poll_until(browser, txn_id, lambda d: d["status"] == "pending")
        assert first["rfa"] == "RFA1" and first["qr"].startswith("data:image/svg+xml")
        assert first["message"] == "Starta BankID-appen och läs av QR-koden."
        state = order(bb, txn_id)
        assert state["qr_start_secret"] not in page.text + str(first)
        payload = qr_payload_at(state["qr_start_token"], state["qr_start_secret"],
                                state["received_at"], time.time())
        sim(browser, "scan", qr=payload, personalNumber=ANNA)
        signing = poll_until(browser, txn_id, lambda d: d["hint"] == "userSign")
        assert signing["rfa"] == "RFA9" and signing["qr"] is None  # QR gone once scanned
        assert re.search(r'id="qr"[^>]*hidden', browser.get(f"/login/bankid/{txn_id}/wait").text)
        sim(browser, "approve", orderRef=state["order_ref"], personalNumber=ANNA)
        done = poll_until(browser, txn_id, lambda d: d.get("next"))
        assert done["next"] == f"/login/bankid/{txn_id}/finish"
        claims = finish(rp, browser, browser.get(done["next"]))
    assert claims["sub"] == "u-anna"
    assert claims["acr"] == "http://id.elegnamnden.se/loa/1.0/loa3"
    scrape = bb.broker.metrics.exposition().decode()
    assert 'broker_bankid_hint_codes_total{hint_code="userSign"}' in scrape
    audit = (bb.tmp / "audit.log").read_text()
    assert "completionData" in audit and ANNA in audit


def test_the_request_that_collects_the_completion_sends_the_browser_on(bankid_broker):
    """Issue 19's stall: the app sends the phone back to returnUrl; that request collects
    the completion (BankID gives it out once). It must send the browser on, and so must
    every later request on the transaction."""
    bb = bankid_broker
    with httpx.Client(base_url=bb.issuer, headers={"user-agent": IPHONE_SAFARI}) as browser:
        rp, txn_id, page = begin(bb, browser)
        assert "BankID på den här enheten" in page.text and 'class="qr"' not in page.text
        # The page's script starts the order and opens the app in one tap: the wait page
        # is not loaded before the app returns, so nothing has collected the order yet.
        started = browser.post(f"/login/bankid/{txn_id}/start", headers={"accept": "application/json"},
                               data={"csrf": form_fields(page.text)["csrf"], "device": "this"})
        assert started.json()["launch"].startswith("/bankid-simulator/app?autostarttoken=")
        state = order(bb, txn_id)
        placed = sim_order(browser, state["order_ref"])
        assert placed["returnUrl"].startswith(f"{bb.issuer}/login/bankid/{txn_id}/wait?nonce=")
        sim(browser, "approve", orderRef=state["order_ref"], personalNumber=ANNA)
        returned = browser.get(placed["returnUrl"])  # the app opens returnUrl in Safari
        # It collects the completion and hands the identity on itself: straight to the
        # service, no further redirect through the broker for a phone on a slow network.
        assert returned.status_code in (302, 303)
        assert returned.headers["location"].startswith(rp.redirect_uri + "?code=")
        claims = finish(rp, browser, returned)
    assert claims["sub"] == "u-anna"


def test_every_request_after_the_collect_still_knows_where_to_go(bankid_broker):
    """The page's poll collected the completion, and its answer was lost (the person's
    connection dropped): BankID has nothing left to collect, yet the next poll points to
    `finish`, and a reload of the wait page (or its refresh without JavaScript) hands the
    identity on."""
    bb = bankid_broker
    with httpx.Client(base_url=bb.issuer, headers={"user-agent": IPHONE_SAFARI}) as browser:
        rp, txn_id, page = begin(bb, browser)
        started = browser.post(f"/login/bankid/{txn_id}/start", headers={"accept": "application/json"},
                               data={"csrf": form_fields(page.text)["csrf"], "device": "this"})
        assert started.status_code == 200
        state = order(bb, txn_id)
        sim(browser, "approve", orderRef=state["order_ref"], personalNumber=ANNA)
        first = browser.get(f"/login/bankid/{txn_id}/status").json()  # collects; "lost"
        assert first["next"] == f"/login/bankid/{txn_id}/finish"
        assert order(bb, txn_id)["status"] == "complete"
        assert browser.get(f"/login/bankid/{txn_id}/status").json()["next"] == first["next"]
        again = browser.get(f"/login/bankid/{txn_id}/wait")
        assert again.headers["location"].startswith(rp.redirect_uri + "?code=")
        claims = finish(rp, browser, again)
    assert claims["sub"] == "u-anna"


def test_a_replica_that_loses_the_collect_race_adopts_the_completion(bankid_broker):
    """Two replicas poll one order: one collects the completion; the other's /collect then
    says "no such order", which must not turn the finished login into a failure."""
    import asyncio

    from broker.connectors.bankid import BankIDClient, BankIDOrders
    from broker.connectors.bankid.orders import OrderState
    from broker.store import open_store
    from broker.store.scoped import ScopedStore

    bb = bankid_broker
    settings = bb.broker.settings
    with httpx.Client(base_url=bb.issuer) as browser:
        _rp, txn_id, _page = begin(bb, browser)
        record = {**order(bb, txn_id), "last_collect_at": 0.0}
        sim(browser, "approve", orderRef=record["order_ref"], personalNumber=ANNA)
        first, second = OrderState.from_record(record), OrderState.from_record(record)

        async def both():
            # Two replicas: their own store connections, one BankID (the simulator).
            store = open_store(settings.store.url, settings.store.prefix)
            sim_app = bb.broker.extra_mounts["/bankid-simulator"]
            client = BankIDClient("http://sim/rp/v6.0/", transport=httpx.ASGITransport(app=sim_app))
            # The connector's records: the store under "bankid:" (ScopedStore).
            orders = BankIDOrders(client, settings.connectors.bankid,
                                  store=ScopedStore(store, "bankid"))
            try:
                await store.delete(f"bankid:collect:{record['order_ref']}")
                one = await orders.poll(first)
                await store.delete(f"bankid:collect:{record['order_ref']}")  # lock passed
                two = await orders.poll(second)
            finally:
                await client.aclose()
                await store.close()
            return one, two

        one, two = asyncio.run(both())
    assert one.status == "complete" and one.completion is not None
    assert two.status == "complete" and two.completion.user.personal_number == ANNA


def test_this_computer_from_the_qr_page(bankid_broker):
    bb = bankid_broker
    with httpx.Client(base_url=bb.issuer) as browser:
        rp, txn_id, page = begin(bb, browser)
        qr_ref = order(bb, txn_id)["order_ref"]
        wait = choose(browser, txn_id, page, "this")
        launch = re.search(r'id="launch" class="button primary" href="([^"]+)"', wait.text).group(1)
        assert launch.startswith("/bankid-simulator/app?autostarttoken=")
        assert "Starta BankID-appen" in wait.text and 'class="qr"' not in wait.text
        state = order(bb, txn_id)
        assert state["order_ref"] != qr_ref and state["flow"] == "autostart"
        assert sim_order(browser, state["order_ref"])["returnUrl"] is None  # computers: none
        assert qr_ref not in [o["orderRef"] for o in
                              browser.get("/bankid-simulator/control/orders").json()["orders"]
                              if o["status"] == "pending"]
        sim(browser, "open", autoStartToken=state["auto_start_token"])
        poll_until(browser, txn_id, lambda d: d["hint"] == "started")
        sim(browser, "approve", orderRef=state["order_ref"], personalNumber=ANNA)
        # Without JavaScript: the page's own refresh finds the order complete.
        assert 'http-equiv="refresh" content="2;url=/login/bankid/' in wait.text
        deadline = time.monotonic() + 10
        while (again := browser.get(f"/login/bankid/{txn_id}/wait")).status_code == 200:
            assert time.monotonic() < deadline
            time.sleep(0.3)
        # ... and hands the identity on itself.
        assert again.headers["location"].startswith(rp.redirect_uri + "?code=")
        assert finish(rp, browser, again)["sub"] == "u-anna"


def test_reload_and_language_switch_keep_the_order(bankid_broker):
    bb = bankid_broker
    with httpx.Client(base_url=bb.issuer) as browser:
        _rp, txn_id, page = begin(bb, browser)
        ref = order(bb, txn_id)["order_ref"]
        switch = re.search(r'class="lang" href="([^"]+)"', page.text).group(1)
        english = browser.get(switch.replace("&amp;", "&"))
        assert english.status_code == 200 and "Start your BankID app and scan the QR code." in english.text
        assert browser.get(f"/login/bankid/{txn_id}/wait").status_code == 200  # a reload
        assert browser.get(f"/login/{txn_id}").status_code == 303  # back to the start: same order
        assert order(bb, txn_id)["order_ref"] == ref
        assert sim_order(browser, ref)["status"] == "pending"
        assert "Start your BankID app" in poll_until(browser, txn_id, lambda d: True)["message"]


def test_a_gone_order_says_so_and_one_tap_starts_a_new_one(bankid_broker):
    bb = bankid_broker
    with httpx.Client(base_url=bb.issuer) as browser:
        _rp, txn_id, _page = begin(bb, browser)
        ref = order(bb, txn_id)["order_ref"]
        bb.simulator.orders.pop(ref)  # BankID forgot it (cancelled elsewhere, too old)
        gone = poll_until(browser, txn_id, lambda d: d["status"] == "failed")
        assert "avbröts eller tog för lång tid" in gone["message"]
        shown = browser.get(f"/login/bankid/{txn_id}/wait")
        assert shown.status_code == 200 and "Försök igen" in shown.text
        assert 'http-equiv="refresh"' not in shown.text  # nothing to wait for
        again = choose(browser, txn_id, shown, "other", same="1")
        assert order(bb, txn_id)["order_ref"] != ref and 'class="qr"' in again.text


def test_user_cancel_in_app_then_try_again_and_avbryt(bankid_broker):
    bb = bankid_broker
    with httpx.Client(base_url=bb.issuer) as browser:
        _rp, txn_id, _page = begin(bb, browser)
        state = order(bb, txn_id)
        sim(browser, "cancel", orderRef=state["order_ref"])
        failed = poll_until(browser, txn_id, lambda d: d["status"] == "failed")
        assert failed["rfa"] == "RFA6" and "avbr" in failed["message"].lower()
        shown = browser.get(f"/login/bankid/{txn_id}/wait")
        assert 'id="qr"' in shown.text and re.search(r'id="qr"[^>]*hidden', shown.text)
        # "Försök igen" retries the same way (a QR again), not the device choice.
        retry = choose(browser, txn_id, shown, "other", same="1")
        assert 'class="qr"' in retry.text and "data:image/svg+xml" in retry.text
        ref = order(bb, txn_id)["order_ref"]
        back = browser.post(f"/login/bankid/{txn_id}/cancel",
                            data={"csrf": form_fields(retry.text)["csrf"]})
        assert back.status_code == 200 and "Mobilt BankID" in back.text  # RFA19 on a computer
        assert "BankID på den här datorn" in back.text
        orders = browser.get("/bankid-simulator/control/orders").json()["orders"]
        assert ref not in [o["orderRef"] for o in orders if o["status"] == "pending"]
        # Its language switch leads to a page that exists (not the POST's URL).
        switch = re.search(r'class="lang" href="([^"]+)"', back.text).group(1)
        assert browser.get(switch.replace("&amp;", "&")).status_code == 200


def test_another_browser_cannot_take_over_the_order(bankid_broker):
    bb = bankid_broker
    with httpx.Client(base_url=bb.issuer) as browser, httpx.Client(base_url=bb.issuer) as thief:
        rp, txn_id, _ = begin(bb, browser)
        state = order(bb, txn_id)
        for path in ("status", "wait", "finish"):
            assert thief.get(f"/login/bankid/{txn_id}/{path}").status_code == 403
        sim(browser, "approve", orderRef=state["order_ref"], personalNumber=ANNA)
        assert thief.get(f"/login/bankid/{txn_id}/finish").status_code == 403
        done = poll_until(browser, txn_id, lambda d: d.get("next"))
        assert finish(rp, browser, browser.get(done["next"]))["sub"] == "u-anna"


def test_every_page_survives_a_reload_through_the_picker(bankid_broker):
    bb = bankid_broker
    with httpx.Client(base_url=bb.issuer) as browser:
        rp, txn_id, _ = begin(bb, browser)
        state = order(bb, txn_id)
        sim(browser, "approve", orderRef=state["order_ref"], personalNumber=ERIK)
        done = poll_until(browser, txn_id, lambda d: d.get("next"))
        picker = browser.get(done["next"])
        assert picker.status_code == 200 and "Välj roll och enhet" in picker.text
        assert "checked" not in picker.text  # nothing remembered yet: no silent choice
        for path in ("finish", "wait"):
            again = browser.get(f"/login/bankid/{txn_id}/{path}")
            assert again.status_code == 303 and again.headers["location"] == f"/login/{txn_id}"
        assert browser.get(f"/login/bankid/{txn_id}/status").json()["next"] == f"/login/{txn_id}"
        assert "Välj roll och enhet" in browser.get(f"/login/{txn_id}").text
        chosen = browser.post(f"/login/{txn_id}/select",
                              data={"csrf": form_fields(picker.text)["csrf"], "assignment": "a-e-2"})
        assert finish(rp, browser, chosen)["sub"] == "u-erik"
        # The next login preselects the role and unit chosen now.
        _rp2, txn2, _ = begin(bb, browser, prompt="login")
        ref2 = order(bb, txn2)["order_ref"]
        sim(browser, "approve", orderRef=ref2, personalNumber=ERIK)
        done = poll_until(browser, txn2, lambda d: d.get("next"))
        picker2 = browser.get(done["next"])
        assert re.search(r'value="a-e-2"\s+checked', picker2.text)


def test_authorization_source_down_at_finish_is_a_503_and_a_retry_finishes(redis, tmp_path):
    from tests.bankidweb.conftest import BankIDBroker, bankid_users, start_broker
    from tests.support.fakes import FakeSource
    from tests.support.server import serve

    source = FakeSource(bankid_users())
    issuer, port, app = start_broker(redis, tmp_path, source=source)
    with serve(app, port):
        bb = BankIDBroker(issuer, app, tmp_path)
        with httpx.Client(base_url=issuer) as browser:
            rp, txn_id, _ = begin(bb, browser)
            sim(browser, "approve", orderRef=order(bb, txn_id)["order_ref"], personalNumber=ANNA)
            done = poll_until(browser, txn_id, lambda d: d.get("next"))
            source.down = True
            assert browser.get(done["next"]).status_code == 503
            source.down = False
            assert finish(rp, browser, browser.get(done["next"]))["sub"] == "u-anna"


def test_authorization_source_down_when_the_wait_page_finishes_then_a_reload_finishes(
        redis, tmp_path):
    """The wait page (no JavaScript, or a phone back from the app) finishes the login
    itself. If that finish fails (a 503 page), a reload still finishes the same order."""
    from tests.bankidweb.conftest import BankIDBroker, bankid_users, start_broker
    from tests.support.brokers import FakeClock
    from tests.support.fakes import FakeSource
    from tests.support.server import serve

    clock, source = FakeClock(), FakeSource(bankid_users())
    issuer, port, app = start_broker(redis, tmp_path, clock=clock, source=source)
    with serve(app, port):
        bb = BankIDBroker(issuer, app, tmp_path)
        with httpx.Client(base_url=issuer) as browser:
            rp, txn_id, _ = begin(bb, browser)
            sim(browser, "approve", orderRef=order(bb, txn_id)["order_ref"], personalNumber=ANNA)
            source.down = True
            assert _wait_page_past_waiting(browser, txn_id, clock).status_code == 503
            source.down = False
            page = _wait_page_past_waiting(browser, txn_id, clock)
            assert finish(rp, browser, page)["sub"] == "u-anna"


def _wait_page_past_waiting(browser, txn_id, clock, seconds=10):
    """The wait page, reloaded (and the clock moved on) until it shows something else."""
    deadline = time.monotonic() + seconds
    while (page := browser.get(f"/login/bankid/{txn_id}/wait")).status_code == 200:
        assert time.monotonic() < deadline, "the wait page kept waiting"
        clock.advance(3)
        time.sleep(0.3)
    return page


def test_order_starts_per_transaction_are_limited(bankid_broker):
    bb = bankid_broker
    limits = bb.broker.settings.connectors.bankid.rate_limits
    with httpx.Client(base_url=bb.issuer) as browser:
        _rp, txn_id, page = begin(bb, browser)  # the QR shown at once is the first start
        csrf = form_fields(page.text)["csrf"]
        answers = [browser.post(f"/login/bankid/{txn_id}/start", data={"csrf": csrf})
                   for _ in range(limits.starts_per_transaction - 1)]
        live = order(bb, txn_id)["order_ref"]
        refused = browser.post(f"/login/bankid/{txn_id}/start", data={"csrf": csrf})
        assert {a.status_code for a in answers} == {303}
        assert refused.status_code == 429 and refused.headers["retry-after"] == "60"
        assert "För många försök i den här inloggningen" in refused.text
        # The refused start neither placed an order nor cancelled the live one.
        assert order(bb, txn_id)["order_ref"] == live
        assert sim_order(browser, live)["status"] == "pending"


def test_personal_number_field(redis, tmp_path):
    from tests.bankidweb.conftest import BankIDBroker, start_broker
    from tests.support.server import serve

    issuer, port, app = start_broker(redis, tmp_path, personal_number_field=True)
    with serve(app, port):
        bb = BankIDBroker(issuer, app, tmp_path)
        with httpx.Client(base_url=issuer) as browser:
            _rp, txn_id, choice = begin(bb, browser)  # with the field, the choice comes first
            assert 'name="personal_number"' in choice.text and "pattern=" not in choice.text
            action = f"/login/bankid/{txn_id}/start"
            csrf = form_fields(choice.text)["csrf"]
            for bad, why in (("900101-2384", "Kontrollera den sista siffran"),
                             ("19901301-2385", "giltigt datum"),
                             ("12345", "10 eller 12 siffror")):
                page = browser.post(action, data={"csrf": csrf, "device": "other",
                                                  "personal_number": bad})
                assert page.status_code == 400 and why in page.text
                field = re.search(r"<input id=\"pnr\"[^>]*>", page.text).group(0)
                assert f'value="{bad}"' in field and 'aria-invalid="true"' in field
                assert 'aria-describedby="pnr-hint pnr-error"' in field
            assert browser.get("/bankid-simulator/control/orders").json()["orders"] == []
            ok = browser.post(action, data={"csrf": csrf, "device": "other",
                                            "personal_number": "900101-2385"})
            assert ok.status_code == 303
            orders = browser.get("/bankid-simulator/control/orders").json()["orders"]
            assert [o["requiredPersonalNumber"] for o in orders] == [ANNA]


def test_start_failed_restarts_silently(redis, tmp_path):
    from tests.bankidweb.conftest import BankIDBroker, start_broker
    from tests.support.server import serve

    issuer, port, app = start_broker(redis, tmp_path, simulator={"start_timeout": 1},
                                     collect_interval=1)
    with serve(app, port):
        bb = BankIDBroker(issuer, app, tmp_path)
        with httpx.Client(base_url=issuer) as browser:
            rp, txn_id, _ = begin(bb, browser)
            first = order(bb, txn_id)["order_ref"]
            time.sleep(1.2)
            data = poll_until(browser, txn_id, lambda d: order(bb, txn_id)["order_ref"] != first)
            assert data["status"] == "pending" and data["rfa"] == "RFA1"
            state = order(bb, txn_id)
            sim(browser, "approve", orderRef=state["order_ref"], personalNumber=ANNA)
            done = poll_until(browser, txn_id, lambda d: d.get("next"))
            assert finish(rp, browser, browser.get(done["next"]))["sub"] == "u-anna"
