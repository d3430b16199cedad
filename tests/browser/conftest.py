"""Real-browser tests: Playwright driving Debian's chromium (never a downloaded browser)."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
import time

import pytest

from tests.bankid.user_agents import UA
from tests.support.redis import free_port

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (bash .ci/setup does it)")
    return CHROMIUM


@pytest.fixture
async def browser(chromium_path):
    from playwright.async_api import async_playwright

    profile = tempfile.mkdtemp(prefix="broker-chromium-")
    async with async_playwright() as p:
        instance = await p.chromium.launch(executable_path=chromium_path, args=ARGS)
        try:
            yield instance
        finally:
            await instance.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def demo_stack(tmp_path_factory):
    """`broker demo` as a newcomer runs it: broker, simulator, demo RP, demo authorizations,
    and the SITHS host (TLS, test card) with its OCSP/CRL server - all in one event loop."""
    from broker.demo.command import build_demo

    port = free_port()
    stack = build_demo(tmp_path_factory.mktemp("demo"), "localhost", port,
                       siths_port=free_port())
    servers = stack.servers()
    thread = threading.Thread(target=lambda: asyncio.run(stack.serve(servers)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not all(s.started for s in servers):
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the demo's servers did not start")
        time.sleep(0.02)
    try:
        yield stack
    finally:
        servers[0].should_exit = True  # the others follow
        thread.join(10)
        stack.close()


@pytest.fixture(scope="module")
def demo(demo_stack) -> str:
    """The demo's main URL (http://localhost:<port>)."""
    return demo_stack.base_url


def run(coro):
    return asyncio.get_event_loop().run_until_complete(coro)



# -- a broker as people meet it: real Redis, the embedded simulator on a clock tests move,
#    and the demo relying party (its login link is the client's initiate_login_uri) ---------

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 2}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}


class PeopleStack:
    """What a browser test needs: the URLs, the simulator (control API and clock), Redis."""

    def __init__(self, base, app, clock, redis_url):
        self.base = base
        self.app = app
        self.broker = app.state.broker
        self.clock = clock
        self.redis_url = redis_url

    @property
    def simulator(self):
        return self.broker.extra_mounts["/bankid-simulator"].state.simulator

    def context_options(self, device: str, ua: str = "ios_safari", **extra) -> dict:
        """A Swedish phone or computer (pages in English come from the language switch)."""
        extra = {"locale": "sv-SE", **extra}
        if device == "phone":
            return {**PHONE, "user_agent": UA[ua], **extra}
        return {**DESKTOP, **extra}

    def control(self, action: str, **body) -> dict:
        import httpx

        response = httpx.post(f"{self.base}/bankid-simulator/control/{action}", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def clear_faults(self) -> None:
        import httpx

        httpx.delete(f"{self.base}/bankid-simulator/control/faults")

    def orders(self) -> list[dict]:
        import httpx

        return httpx.get(f"{self.base}/bankid-simulator/control/orders").json()["orders"]

    def pending(self) -> dict:
        live = [o for o in self.orders() if o["status"] == "pending"]
        assert len(live) == 1, live
        return live[0]

    def txn_record(self, txn_id: str) -> dict | None:
        import json

        import redis

        s = self.broker.settings
        raw = redis.Redis.from_url(s.store.url).get(f"{s.store.prefix}txn:{txn_id}")
        return json.loads(raw) if raw else None

    def end_txn(self, txn_id: str) -> None:
        import redis

        s = self.broker.settings
        redis.Redis.from_url(s.store.url).delete(f"{s.store.prefix}txn:{txn_id}")

    def qr_now(self, txn_id: str) -> str:
        """The QR frame the page shows now (what a phone camera would read)."""
        from broker.connectors.bankid.qr import qr_payload_at

        o = self.txn_record(txn_id)["upstream"]["bankid"]["order"]
        return qr_payload_at(o["qr_start_token"], o["qr_start_secret"], o["received_at"],
                             self.clock())


def people_stack(redis_url: str, tmp, *, extra_connectors=None, **bankid):
    """Build (not start) a broker with the demo RP mounted at /demo-rp."""
    import secrets

    from starlette.routing import Mount

    from broker.app import bankid_connector, create_app
    from broker.config import parse_settings
    from broker.demo.rp import create_demo_rp
    from broker.simulators.bankid_engine import SimulatedClock
    from broker.store import open_store
    from tests.bankidweb.conftest import bankid_users
    from tests.support.fakes import FakeSource

    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    secret = secrets.token_urlsafe(32)
    config = {
        "issuer": issuer,
        "store": {"url": redis_url, "prefix": f"p{secrets.token_hex(4)}:"},
        "keys": {"dir": str(tmp / "keys"), "generate": True},
        "audit": {"target": str(tmp / "audit.log")},
        "clients": [{
            "client_id": "lifecare", "client_name": "Lifecare", "client_secret": secret,
            "redirect_uris": [f"{issuer}/demo-rp/callback"],
            "post_logout_redirect_uris": [f"{issuer}/demo-rp/"],
            "scopes": ["openid", "profile", "https://id.oidc.se/scope/naturalPersonNumber",
                       "assignments"],
            "client_uri": f"{issuer}/demo-rp/", "initiate_login_uri": f"{issuer}/demo-rp/login"}],
        "connectors": {"bankid": {"environment": "simulator",
                                  "rate_limits": {"starts_per_ip_per_minute": 10_000}, **bankid}},
    }
    settings = parse_settings(config, str(tmp / "broker.yaml"))
    clock = SimulatedClock()
    rp = create_demo_rp(issuer, "lifecare", secret, f"{issuer}/demo-rp")
    app = create_app(settings, store=open_store(redis_url, settings.store.prefix),
                     source=FakeSource(bankid_users()),
                     connectors={"bankid": bankid_connector(clock=clock),
                                 **(extra_connectors or {})},
                     extra_routes=[Mount("/demo-rp", app=rp)])
    return PeopleStack(issuer, app, clock, redis_url), port


@pytest.fixture(scope="module")
def people(redis, tmp_path_factory):
    from tests.support.server import serve

    stack, port = people_stack(redis, tmp_path_factory.mktemp("people"))
    with serve(stack.app, port):
        yield stack
