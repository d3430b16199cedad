"""Readiness tells the truth about Redis: red while the broker talks to a replica or its
writes fail (NOREPLICAS, OOM), green again by itself; and a Redis that lost its data is
said out loud (an error log line and a metric), not silently served."""

from __future__ import annotations

import logging
import subprocess
import time

import httpx

from tests.support.brokers import running_broker
from tests.support.redis import free_port, redis_server


def cli(port: int, *args: str) -> str:
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True,
                          text=True, timeout=5, check=True).stdout.strip()


def ready(url: str) -> tuple[int, dict]:
    resp = httpx.get(url + "/readyz", timeout=10)
    return resp.status_code, resp.json()


def test_readiness_is_red_on_a_replica_and_while_writes_fail(tmp_path):
    with redis_server() as (master_url, _), redis_server() as (replica_url, _):
        master = int(master_url.rsplit(":", 1)[1].split("/")[0])
        replica = int(replica_url.rsplit(":", 1)[1].split("/")[0])
        cli(replica, "replicaof", "127.0.0.1", str(master))
        # The broker pointed at the replica: never ready, even a replica that takes writes
        # (replica-read-only no: they are gone at its next resync).
        with running_broker(replica_url, tmp_path / "r") as b:
            for read_only in ("yes", "no"):
                cli(replica, "config", "set", "replica-read-only", read_only)
                code, body = ready(b.issuer)
                assert code == 503 and body["checks"]["store"] == "unavailable", body
        with running_broker(master_url, tmp_path / "m") as b:
            assert ready(b.issuer)[0] == 200
            # A master that may not write without a replica, and has none in sync.
            cli(replica, "replicaof", "no", "one")
            cli(master, "config", "set", "min-replicas-to-write", "1")
            cli(master, "config", "set", "min-replicas-max-lag", "1")
            deadline = time.monotonic() + 10
            while ready(b.issuer)[0] == 200 and time.monotonic() < deadline:
                time.sleep(0.2)
            code, body = ready(b.issuer)
            assert code == 503 and body["checks"]["store"] == "unavailable", body
            cli(master, "config", "set", "min-replicas-to-write", "0")
            assert ready(b.issuer)[0] == 200  # recovers by itself
            # Out of memory with noeviction: writes fail, so not ready.
            cli(master, "config", "set", "maxmemory-policy", "noeviction")
            cli(master, "config", "set", "maxmemory", "1")
            try:
                assert ready(b.issuer)[0] == 503
            finally:
                cli(master, "config", "set", "maxmemory", "0")
            assert ready(b.issuer)[0] == 200


def test_a_store_that_lost_its_data_is_said_out_loud(tmp_path, caplog):
    port = free_port()
    with redis_server(port) as (url, _):
        with running_broker(url, tmp_path) as b:
            rp = b.rp()
            with b.browser() as browser:
                tokens = rp.token(rp.login(browser)).json()
            assert ready(b.issuer)[0] == 200
            caplog.clear()
            with caplog.at_level(logging.ERROR):
                # The master restarts without persistence: it comes back empty.
                cli(port, "flushall")
                assert ready(b.issuer)[0] == 200  # the store works; it forgot
                lost = [r for r in caplog.records if "lost its data" in r.getMessage()]
                assert len(lost) == 1 and lost[0].levelno == logging.ERROR
                scrape = b.broker.metrics.exposition().decode()
                assert 'broker_errors_total{kind="store_data_lost"} 1.0' in scrape
                assert ready(b.issuer)[0] == 200
                assert len([r for r in caplog.records if "lost its data" in r.getMessage()]) == 1
            assert rp.refresh(tokens["refresh_token"]).json()["error"] == "invalid_grant"
