"""What unauthenticated /authorize requests may cost, measured in a real Redis: a limit per
client address (IPv6 per /64) answered 429 with Retry-After, a cap on the parameters, and
a small, short-lived record until a browser binds the transaction."""

from __future__ import annotations

import asyncio
import json
import secrets

import httpx
import pytest
import redis as redis_lib

from broker.app import create_app
from broker.config import STANDARD_SCOPES, parse_settings
from broker.login_transaction import UNBOUND_TTL
from broker.oidc.authorize import MAX_KEPT
from broker.ratelimit import address_bucket
from broker.store import open_store
from tests.support.fakes import FakeConnector, FakeSource, default_users
from tests.support.rp import pkce

REDIRECT = "https://rp.example/cb"
NOW = 1_800_000_000.0  # a fixed clock: the whole flood falls in one window, however slow


def build(redis: str, tmp, per_minute: int | None = None):
    prefix = f"cost{secrets.token_hex(4)}:"
    config = {"issuer": "http://127.0.0.1:9", "store": {"url": redis, "prefix": prefix},
              "keys": {"dir": str(tmp / "keys"), "generate": True},
              "audit": {"target": str(tmp / "audit.log")},
              "clients": [{"client_id": "rp", "client_name": "RP", "client_secret": "s" * 32,
                           "redirect_uris": [REDIRECT], "scopes": list(STANDARD_SCOPES)}]}
    if per_minute:
        config["login"] = {"authorize_per_address_per_minute": per_minute}
    settings = parse_settings(config, str(tmp / "broker.yaml"))
    app = create_app(settings, store=open_store(redis, prefix),
                     source=FakeSource(default_users(("rp",))),
                     connectors={"test": FakeConnector}, clock=lambda: NOW)
    return app, settings, prefix


def largest_request() -> dict[str, str]:
    """A valid request holding as much as the transaction may keep."""
    _, challenge = pkce()
    p = {"response_type": "code", "client_id": "rp", "redirect_uri": REDIRECT,
         "scope": "openid profile email assignments", "nonce": secrets.token_urlsafe(32),
         "code_challenge": challenge, "code_challenge_method": "S256", "login_hint": "x" * 200,
         "claims": json.dumps({"id_token": {"given_name": {"essential": True}}},
                             separators=(",", ":"))}
    used = sum(len(k) + len(v) for k, v in p.items()) + len("state")
    p["state"] = "s" * (MAX_KEPT - used)
    return p


def client(app, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9")


async def test_ten_thousand_requests_from_one_address(redis, tmp_path):
    app, settings, prefix = build(redis, tmp_path)
    limit = settings.login.authorize_per_address_per_minute
    r = redis_lib.Redis.from_url(redis)
    r.execute_command("MEMORY", "PURGE")
    before = r.info("memory")["used_memory"]
    params = largest_request()

    answers: list[httpx.Response] = []
    async with client(app, "198.51.100.7") as http:
        for _ in range(10_000 // 50):
            answers += await asyncio.gather(*(http.get("/authorize", params=params)
                                              for _ in range(50)))
    created = [a for a in answers if a.status_code == 303]
    refused = [a for a in answers if a.status_code == 429]
    assert len(created) == limit and len(refused) == 10_000 - limit
    assert all(0 < int(a.headers["retry-after"]) <= 60 for a in refused)
    assert all(a.headers["location"].startswith("/login/") for a in created)

    keys = r.keys(prefix + "txn:*")
    assert len(keys) == limit
    sizes = [r.memory_usage(k, samples=0) for k in keys]
    assert max(sizes) <= 4096, max(sizes)  # per pending unbound transaction
    assert all(0 < r.ttl(k) <= UNBOUND_TTL for k in keys)
    grown = r.info("memory")["used_memory"] - before
    assert grown < 50 * 2**20, grown
    assert grown < 4096 * limit + 2 * 2**20  # the transactions, and little else
    r.delete(*keys)


async def test_a_bigger_request_is_refused_and_keeps_nothing(redis, tmp_path):
    app, _, prefix = build(redis, tmp_path)
    r = redis_lib.Redis.from_url(redis)
    params = largest_request()
    async with client(app, "198.51.100.8") as http:
        fits = await http.get("/authorize", params=params)
        assert fits.status_code == 303
        kept = await http.get("/authorize", params={**params, "state": params["state"] + "s"})
        assert kept.status_code == 303 and "error=invalid_request" in kept.headers["location"]
        huge = await http.get("/authorize", params={**params, **{f"x{i}": "y" * 4000
                                                                 for i in range(3)}})
        assert huge.status_code == 400 and "location" not in huge.headers
    assert len(r.keys(prefix + "txn:*")) == 1


async def test_binding_gives_the_transaction_its_full_time(redis, tmp_path):
    app, settings, prefix = build(redis, tmp_path)
    r = redis_lib.Redis.from_url(redis)
    params = {**largest_request(), "prompt": "select_account"}  # stays at the picker
    async with client(app, "198.51.100.9") as http:
        first = await http.get("/authorize", params={**params, "login_hint": "198505152384"})
        key = prefix + "txn:" + first.headers["location"].rsplit("/", 1)[1]
        assert 0 < r.ttl(key) <= UNBOUND_TTL
        picker = await http.get(first.headers["location"])
        assert picker.status_code == 200
    assert UNBOUND_TTL < r.ttl(key) <= settings.login.transaction_ttl


@pytest.mark.parametrize(("first", "second", "shared"), [
    ("2001:db8:1:2::1", "2001:db8:1:2:ffff::9", True),    # one /64
    ("2001:db8:1:2::1", "2001:db8:1:3::1", False),        # the next /64
    ("198.51.100.1", "198.51.100.2", False),              # IPv4: per address
    ("::ffff:198.51.100.1", "198.51.100.1", True),        # IPv4-mapped is IPv4
])
async def test_ipv6_counts_per_64(redis, tmp_path, first, second, shared):
    assert (address_bucket(first) == address_bucket(second)) is shared
    app, _, _ = build(redis, tmp_path, per_minute=10)
    async with client(app, first) as a, client(app, second) as b:
        codes = [(await a.get("/authorize", params=largest_request())).status_code
                 for _ in range(10)]
        codes.append((await b.get("/authorize", params=largest_request())).status_code)
    assert codes[:10] == [303] * 10
    assert codes[10] == (429 if shared else 303)
