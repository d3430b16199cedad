"""Every form POST of the login flow checks its CSRF token: the method choice, the role
and unit picker, "no authorization" (deny), and BankID start and cancel. A forged post
(no token, another login's token) is refused with 403 and changes nothing: the same
step still works afterwards with the genuine token."""

from __future__ import annotations

import re
import secrets

import httpx
import pytest

from broker.app import bankid_connector, create_app
from broker.config import parse_settings
from broker.store import open_store
from tests.support.fakes import FakeConnector, FakeSource, default_users
from tests.support.redis import free_port
from tests.support.rp import FakeRP
from tests.support.server import serve

REDIRECT = "https://rp.example/cb"


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


@pytest.fixture(scope="module")
def broker(redis, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("csrf")
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    settings = parse_settings({
        "issuer": issuer,
        "store": {"url": redis, "prefix": f"csrf{secrets.token_hex(4)}:"},
        "keys": {"dir": str(tmp / "keys"), "generate": True},
        "audit": {"target": str(tmp / "audit.log")},
        "clients": [{"client_id": "lifecare", "client_name": "Lifecare",
                     "client_secret": "l" * 32, "redirect_uris": [REDIRECT]}],
        "connectors": {"bankid": {"environment": "simulator"}},
    }, str(tmp / "broker.yaml"))
    app = create_app(settings, store=open_store(redis, settings.store.prefix),
                     source=FakeSource(default_users(("lifecare",))),
                     connectors={"bankid": bankid_connector(), "test": FakeConnector})
    with serve(app, port):
        yield issuer


def rp(issuer: str) -> FakeRP:
    return FakeRP(issuer, "lifecare", REDIRECT, "l" * 32)


def chooser(issuer: str, browser: httpx.Client, **extra) -> tuple[str, httpx.Response]:
    page = rp(issuer).authorize(browser, **extra)
    assert page.status_code == 200 and 'name="method"' in page.text, page.text[:300]
    action = re.search(r'action="(/login/[^"/]+/method)"', page.text).group(1)
    return action, page


def forged_tokens(genuine: str) -> list[dict]:
    return [{}, {"csrf": ""}, {"csrf": "x" * len(genuine)}, {"csrf": genuine[:-1]}]


def test_method_choice(broker):
    with httpx.Client(base_url=broker) as browser:
        action, page = chooser(broker, browser)
        for forged in forged_tokens(csrf_of(page.text)):
            refused = browser.post(action, data={"method": "test", **forged})
            assert refused.status_code == 403
        ok = browser.post(action, data={"method": "test", "csrf": csrf_of(page.text)})
        assert ok.status_code in (302, 303) and "code=" in ok.headers["location"]


def test_another_logins_token_does_not_work(broker):
    with httpx.Client(base_url=broker) as browser:
        _, first = chooser(broker, browser)
        action, _ = chooser(broker, browser)
        assert browser.post(action, data={"method": "test",
                                          "csrf": csrf_of(first.text)}).status_code == 403


def test_picker(broker):
    with httpx.Client(base_url=broker) as browser:
        action, page = chooser(broker, browser, login_hint="198505152384")  # two roles
        picker = browser.post(action, data={"method": "test", "csrf": csrf_of(page.text)})
        assert picker.status_code == 200 and 'name="assignment"' in picker.text
        select = re.search(r'action="(/login/[^"]+/select)"', picker.text).group(1)
        for forged in forged_tokens(csrf_of(picker.text)):
            refused = browser.post(select, data={"assignment": "a-b-2", **forged})
            assert refused.status_code == 403
        ok = browser.post(select, data={"assignment": "a-b-2", "csrf": csrf_of(picker.text)})
        assert ok.status_code in (302, 303) and "code=" in ok.headers["location"]


def test_deny(broker):
    with httpx.Client(base_url=broker) as browser:
        action, page = chooser(broker, browser, login_hint="197212127797")  # no authorization
        denied = browser.post(action, data={"method": "test", "csrf": csrf_of(page.text)})
        assert denied.status_code == 403 and "/deny" in denied.text
        deny = re.search(r'action="(/login/[^"]+/deny)"', denied.text).group(1)
        for forged in forged_tokens(csrf_of(denied.text)):
            assert browser.post(deny, data=forged).status_code == 403
        back = browser.post(deny, data={"csrf": csrf_of(denied.text)})
        assert back.status_code in (302, 303) and "error=access_denied" in back.headers["location"]


def test_bankid_start_and_cancel(broker):
    # A phone: the device choice comes first (a computer gets a QR order at once).
    phone = {"user-agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile Safari/537.36"}
    with httpx.Client(base_url=broker, headers=phone) as browser:
        action, page = chooser(broker, browser)
        choose = browser.post(action, data={"method": "bankid", "csrf": csrf_of(page.text)})
        if choose.status_code in (302, 303):
            choose = browser.get(choose.headers["location"])
        start = re.search(r'action="(/login/bankid/[^"]+/start)"', choose.text).group(1)
        txn = start.split("/")[3]
        csrf = csrf_of(choose.text)

        def pending() -> list:
            orders = browser.get("/bankid-simulator/control/orders").json()["orders"]
            return [o for o in orders if o["status"] == "pending"]

        before = len(pending())
        for forged in forged_tokens(csrf):
            assert browser.post(start, data={"device": "other", **forged}).status_code == 403
        assert len(pending()) == before  # no BankID order was started
        assert browser.post(start, data={"device": "other", "csrf": csrf}).status_code == 303
        assert len(pending()) == before + 1
        cancel = f"/login/bankid/{txn}/cancel"
        for forged in forged_tokens(csrf):
            assert browser.post(cancel, data=forged).status_code == 403
        assert len(pending()) == before + 1  # still running
        assert browser.post(cancel, data={"csrf": csrf}).status_code == 200
        assert len(pending()) == before
