"""Metrics: what a login produces on the metrics port of a real `broker serve`, the sum over
uvicorn workers, and the recording helpers on their own."""

from __future__ import annotations

import httpx
import pytest
from ops_helpers import (
    ANNA,
    BERTIL,
    REDIRECT,
    SECRET,
    Login,
    Replica,
    parse_samples,
    value,
    write_config,
)

from broker.metrics import ActiveLogins, Metrics
from broker.store import StoreError
from broker.store.instrumented import InstrumentedStore
from broker.store.redis import RedisStore
from tests.support.redis import free_port

CECILIA = "197212127797"  # known, but no assignment: denied


@pytest.fixture
def replica(redis, ops_dir):
    port, mport = free_port(), free_port()
    cfg = write_config(ops_dir, issuer=f"http://127.0.0.1:{port}", store_url=redis,
                       metrics_port=mport)
    r = Replica(cfg, port=port, metrics_port=mport).start()
    yield r
    r.stop()


def test_a_login_moves_the_counters(replica):
    url = replica.url
    before = replica.scrape()

    anna = Login(ANNA)
    anna.authorize(url)
    anna.open(url)
    tokens = anna.redeem(url)

    bertil = Login(BERTIL)
    bertil.authorize(url)
    bertil.open(url)  # the picker: a login in progress
    during = replica.scrape()
    bertil.select(url)
    bertil.redeem(url)

    cecilia = Login(CECILIA)
    cecilia.authorize(url)
    assert cecilia.browser.get(url + cecilia.txn_path).status_code == 403  # no authorization

    refreshed = httpx.post(url + "/token", auth=("rp-basic", SECRET), data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    replay = httpx.post(url + "/token", auth=("rp-basic", SECRET), data={
        "grant_type": "authorization_code", "code": anna.code, "redirect_uri": REDIRECT,
        "code_verifier": anna.verifier})
    assert replay.status_code == 400
    after = replica.scrape()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("broker_logins_total", method="test", outcome="success") == 2
    assert moved("broker_logins_total", method="test", outcome="denied") == 1
    assert moved("broker_tokens_issued_total", grant_type="authorization_code") == 2
    assert moved("broker_tokens_issued_total", grant_type="refresh_token") == 1
    assert moved("broker_errors_total", kind="token_invalid_grant") == 1
    assert value(during, "broker_login_transactions_active") == 1
    # Cecilia's login was opened and never finished: it stays counted until it expires.
    assert value(after, "broker_login_transactions_active") == 1
    assert moved("broker_store_operation_seconds_count", operation="take_and_put", outcome="ok") == 2
    assert moved("broker_store_operation_seconds_count", operation="put") >= 3
    assert moved("broker_upstream_request_seconds_count", upstream="authorization") >= 3
    # Nothing about metrics on the public port.
    assert httpx.get(url + "/metrics").status_code == 404


def test_workers_are_summed_on_one_port(redis, ops_dir):
    """--workers 2: both processes record, the supervisor serves the sum on one port."""
    port, mport = free_port(), free_port()
    cfg = write_config(ops_dir, issuer=f"http://127.0.0.1:{port}", store_url=redis,
                       metrics_port=mport)
    r = Replica(cfg, port=port, metrics_port=mport, workers=2).start()
    try:
        for _ in range(8):
            login = Login(ANNA)
            login.authorize(r.url)
            login.open(r.url)
            login.redeem(r.url)
            login.close()
        samples = r.scrape()
        assert value(samples, "broker_logins_total", outcome="success") == 8
        assert value(samples, "broker_tokens_issued_total", grant_type="authorization_code") == 8
        pids = {line.get("message") for line in r.log_lines()
                if str(line.get("message", "")).startswith("Started server process")}
        assert len(pids) == 2, pids
    finally:
        r.stop()
    assert r.proc.returncode == 0


def test_bankid_codes_are_counted_and_bounded():
    m = Metrics()
    m.record_bankid(hint_code="outstandingTransaction")
    m.record_bankid(hint_code="userSign")
    m.record_bankid(hint_code="userSign")
    m.record_bankid(error_code="alreadyInProgress")
    m.record_bankid(error_code="<script>alert(1)</script>")
    s = parse_samples(m.exposition().decode())
    assert value(s, "broker_bankid_hint_codes_total", hint_code="userSign") == 2
    assert value(s, "broker_bankid_hint_codes_total", hint_code="outstandingTransaction") == 1
    assert value(s, "broker_bankid_error_codes_total", error_code="alreadyInProgress") == 1
    assert value(s, "broker_bankid_error_codes_total", error_code="other") == 1


def test_active_logins_expire_without_an_end():
    now = [1000.0]
    m = Metrics()
    active = ActiveLogins(m.active_logins_gauge, clock=lambda: now[0])
    active.started("a", 1600)
    active.started("b", 1300)
    active.ended("a")
    active.ended("never-started-here")
    assert active.count() == 1
    now[0] = 1300
    assert active.count() == 0  # abandoned: gone at its expiry, no drift


async def test_store_latency_and_failures_per_operation(redis):
    m = Metrics()
    store = InstrumentedStore(RedisStore.from_url(redis, prefix="instr:"), m)
    await store.put("k", {"v": 1}, 10)
    assert await store.take("k") == {"v": 1}
    dead = InstrumentedStore(RedisStore.from_url(f"redis://127.0.0.1:{free_port()}/0"), m)
    with pytest.raises(StoreError):
        await dead.get("k")
    s = parse_samples(m.exposition().decode())
    assert value(s, "broker_store_operation_seconds_count", operation="put", outcome="ok") == 1
    assert value(s, "broker_store_operation_seconds_count", operation="take", outcome="ok") == 1
    assert value(s, "broker_store_operation_seconds_count", operation="get", outcome="error") == 1
    assert value(s, "broker_errors_total", kind="store") == 1
    await store.close()
    await dead.close()
