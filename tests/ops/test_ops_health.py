"""Probes: /healthz says the process is alive, /readyz that the store, the signing keys and
the authorization source answer, and it answers fast even when Redis hangs."""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from broker.app import create_app
from broker.config import parse_settings
from tests.support.fakes import FakeConnector, FakeSource, default_users
from tests.support.server import serve


@pytest.fixture
def live(own_redis, tmp_path):
    settings = parse_settings({
        "issuer": "http://127.0.0.1:1",
        "store": {"url": own_redis.url, "prefix": "health:", "timeout": 2},
        "keys": {"dir": str(tmp_path / "keys"), "generate": True},
        "audit": {"target": str(tmp_path / "audit.log")},
        "clients": [{"client_id": "rp", "client_name": "RP", "client_secret": "s" * 32,
                     "redirect_uris": ["https://rp.example/cb"]}],
    }, str(tmp_path / "broker.yaml"))
    source = FakeSource(default_users(("rp",)))
    app = create_app(settings, source=source,
                     connectors={"test": FakeConnector})
    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        yield http, own_redis, source


def probe(http: httpx.Client, path: str) -> tuple[int, dict, float]:
    start = time.monotonic()
    r = http.get(path)
    return r.status_code, r.json(), time.monotonic() - start


def wait_status(http: httpx.Client, path: str, status: int, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        code, body, _ = probe(http, path)
        if code == status or time.monotonic() > deadline:
            assert code == status, body
            return body
        time.sleep(0.1)


def test_redis_stopped_and_started_again(live):
    http, redis, _ = live
    assert probe(http, "/readyz")[:2] == (200, {"status": "ok", "checks": {
        "store": "ok", "keys": "ok", "authorization": "ok"}})

    redis.stop()
    code, body, took = probe(http, "/readyz")
    assert code == 503 and body["checks"]["store"] == "unavailable", body
    assert body["checks"]["keys"] == "ok" and body["checks"]["authorization"] == "ok"
    assert took < 1.5
    assert probe(http, "/healthz")[:2] == (200, {"status": "ok"})

    redis.start()
    wait_status(http, "/readyz", 200)


def test_hanging_redis_is_not_ready_within_a_second(live):
    http, redis, _ = live
    assert probe(http, "/readyz")[0] == 200
    redis.proc.send_signal(signal.SIGSTOP)  # accepts connections, never answers
    try:
        code, body, took = probe(http, "/readyz")
        assert code == 503 and body["checks"]["store"] == "timeout", body
        assert took < 1.8, took
        assert probe(http, "/healthz")[0] == 200
    finally:
        redis.proc.send_signal(signal.SIGCONT)
    wait_status(http, "/readyz", 200)


def test_authorization_source_down_is_not_ready(live):
    http, _, source = live
    source.down = True
    code, body, _ = probe(http, "/readyz")
    assert code == 503 and body["checks"] == {"store": "ok", "keys": "ok",
                                             "authorization": "unavailable"}
    source.down = False
    assert probe(http, "/readyz")[0] == 200


def test_store_outage_is_a_clean_503(live):
    """Pages get the "try again" page, API clients a JSON error they can act on."""
    http, redis, _ = live
    redis.stop()
    page = http.get("/login/abcdefghijklmnop")
    assert page.status_code == 503 and "text/html" in page.headers["content-type"]
    # A code of the right shape (its family, then its secret): only the store can tell.
    code = "f" * 22 + "." + "c" * 43
    token = http.post("/token", data={"grant_type": "authorization_code", "code": code},
                      auth=("rp", "s" * 32))
    assert token.status_code == 503
    assert token.json()["error"] == "temporarily_unavailable"
    assert token.headers["retry-after"] == "1"
