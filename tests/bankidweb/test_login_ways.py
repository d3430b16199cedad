"""No dead ends and no repeated questions: the remembered method, another method from the
BankID page, the way back to the service from every page whose login is gone, and more
time before a login expires."""

import json
import re
import time

import httpx
import pytest
import redis as redis_lib

from tests.bankidweb.conftest import BankIDBroker, start_broker
from tests.bankidweb.test_bankid_pages import begin, form_fields, order
from tests.support.fakes import FakeConnector
from tests.support.server import serve


@pytest.fixture(scope="module")
def two_methods(redis, tmp_path_factory):
    """BankID and a second method (the test connector: logs in at once as login_hint)."""
    tmp = tmp_path_factory.mktemp("ways")
    issuer, port, app = start_broker(redis, tmp, extra_connectors={"test": FakeConnector},
                                     rate_limits={"starts_per_ip_per_minute": 10_000})
    with serve(app, port):
        yield BankIDBroker(issuer, app, tmp)


def txn_key(bb, txn_id):
    s = bb.broker.settings
    return redis_lib.Redis.from_url(s.store.url), f"{s.store.prefix}txn:{txn_id}"


def test_the_method_that_worked_is_used_again_and_another_is_one_tap_away(two_methods):
    from urllib.parse import urlencode

    from tests.bankidweb.test_bankid_pages import poll_until, sim

    bb = two_methods
    with httpx.Client(base_url=bb.issuer) as browser:
        rp = bb.rp()
        chooser = rp.authorize(browser, login_hint="199001012385")
        assert "Välj hur du vill logga in" in chooser.text
        txn_id = re.search(r"/login/([^/]+)/method", chooser.text).group(1)
        done = browser.post(f"/login/{txn_id}/method",
                            data={"csrf": form_fields(chooser.text)["csrf"], "method": "test"})
        assert "code" in rp.callback(rp.follow(browser, done))
        # The next login goes straight to that method: no chooser.
        assert "code" in rp.callback(rp.authorize(browser, login_hint="199001012385",
                                                  prompt="login"))
        # The chooser is one tap away (?choose=1, the link on every method's pages).
        first = browser.get("/authorize?" + urlencode(rp.params(prompt="login")))
        txn_id = first.headers["location"].rsplit("/", 1)[1]
        chooser = browser.get(f"/login/{txn_id}?choose=1")
        assert "Välj hur du vill logga in" in chooser.text
        qr = rp.follow(browser, browser.post(f"/login/{txn_id}/method", data={
            "csrf": form_fields(chooser.text)["csrf"], "method": "bankid"}))
        sim(browser, "approve", orderRef=order(bb, txn_id)["order_ref"],
            personalNumber="199001012385")
        done = poll_until(browser, txn_id, lambda d: d.get("next"))
        assert "code" in rp.callback(rp.follow(browser, browser.get(done["next"])))
        # Now BankID is the remembered method: its QR code at once.
        assert 'class="qr"' in rp.authorize(browser, prompt="login").text
        assert qr.status_code == 200


def test_another_method_from_the_bankid_page_cancels_the_order(two_methods):
    bb = two_methods
    with httpx.Client(base_url=bb.issuer) as browser:
        rp = bb.rp()
        chooser = rp.authorize(browser)
        txn_id = re.search(r"/login/([^/]+)/method", chooser.text).group(1)
        qr = browser.post(f"/login/{txn_id}/method",
                          data={"csrf": form_fields(chooser.text)["csrf"], "method": "bankid"})
        qr = rp.follow(browser, qr)
        assert 'class="qr"' in qr.text and "Välj ett annat sätt att logga in" in qr.text
        ref = order(bb, txn_id)["order_ref"]
        left = browser.post(f"/login/bankid/{txn_id}/cancel",
                            data={"csrf": form_fields(qr.text)["csrf"], "then": "choose"})
        assert left.status_code == 303 and left.headers["location"] == f"/login/{txn_id}?choose=1"
        assert "Välj hur du vill logga in" in browser.get(left.headers["location"]).text
        orders = browser.get("/bankid-simulator/control/orders").json()["orders"]
        assert ref not in [o["orderRef"] for o in orders if o["status"] == "pending"]


def test_a_gone_login_offers_the_way_back_to_the_service(bankid_broker):
    bb = bankid_broker
    with httpx.Client(base_url=bb.issuer) as browser, httpx.Client(base_url=bb.issuer) as fresh:
        _rp, txn_id, live = begin(bb, browser)
        # While the login lives, leaving it is going back to the service's page.
        assert '<a href="https://rp.example/" id="way-back">Tillbaka till Lifecare</a>' in live.text
        db, key = txn_key(bb, txn_id)
        db.delete(key)  # the login expired: now a fresh login is the way on
        for path in ("wait", "status", "finish"):
            page = browser.get(f"/login/bankid/{txn_id}/{path}")
            assert page.status_code == 410
            assert '<a href="https://rp.example/login" id="way-back">Logga in i Lifecare igen</a>' in page.text
        assert browser.get(f"/login/{txn_id}").status_code == 410
        # A browser that never started a login here is told what to do instead.
        stranger = fresh.get(f"/login/bankid/{txn_id}/wait")
        assert stranger.status_code == 410 and "Gå tillbaka till tjänsten du kom från" in stranger.text
        # The logged-out page, too.
        out = browser.get("/logout")
        assert out.status_code == 200 and 'id="way-back"' in out.text


def test_more_time_before_the_login_expires(bankid_broker):
    bb = bankid_broker
    ttl = bb.broker.settings.login.transaction_ttl
    with httpx.Client(base_url=bb.issuer) as browser:
        _rp, txn_id, page = begin(bb, browser)
        left = int(re.search(r'data-expires-in="(\d+)"', page.text).group(1))
        assert ttl - 5 <= left <= ttl
        db, key = txn_key(bb, txn_id)
        record = json.loads(db.get(key))
        record["expires"] = int(time.time()) + 30  # nine and a half minutes later
        db.set(key, json.dumps(record), ex=30)
        shown = browser.get(f"/login/bankid/{txn_id}/wait")
        assert 25 <= int(re.search(r'data-expires-in="(\d+)"', shown.text).group(1)) <= 30
        csrf = form_fields(page.text)["csrf"]
        more = browser.post(f"/login/{txn_id}/extend", data={"csrf": csrf},
                            headers={"accept": "application/json"})
        assert more.status_code == 200 and ttl - 5 <= more.json()["expires_in"] <= ttl
        assert db.ttl(key) > ttl - 10
        assert browser.post(f"/login/{txn_id}/extend", data={"csrf": "wrong"}).status_code == 403
        # Not for ever: at most four lifetimes from the start.
        record = json.loads(db.get(key))
        record["created"] = int(time.time()) - 4 * ttl + 100
        record["expires"] = int(time.time()) + 30
        db.set(key, json.dumps(record), ex=30)
        capped = browser.post(f"/login/{txn_id}/extend", data={"csrf": csrf},
                              headers={"accept": "application/json"}).json()["expires_in"]
        assert 90 <= capped <= 100
        # Without JavaScript the form post goes back to the login.
        plain = browser.post(f"/login/{txn_id}/extend", data={"csrf": csrf})
        assert plain.status_code == 303 and plain.headers["location"] == f"/login/{txn_id}"
