"""Sentinel switch-overs lose nothing, with the broker's recommended settings: writes count
once a replica has them (store.replicas 1, and on the Redis side min-replicas-to-write 1 so a
master that cannot replicate refuses a write before running it).

Eight browsers log in over and over while the master changes, by a planned
`SENTINEL FAILOVER` (what operators and Redis charts do on every upgrade) or by a SIGKILL
of the master. Every failed request is the broker's clean 503 and its step succeeds when
retried; afterwards every completed login still works: its refresh token refreshes and its
SSO cookie logs in again. None may be lost (the old master's unreplicated writes are never
reported as done)."""

from __future__ import annotations

import signal
import subprocess
import threading
import time

import httpx
import pytest
from ops_helpers import ANNA, Login, Replica, StoreUnavailable, write_config

from tests.support.redis import free_port
from tests.support.redis_sentinel import RECOMMENDED_REDIS, sentinel_set

BROWSERS = 8
STEP_DEADLINE = 20.0


def _step(fn, base: str, stats: dict):
    deadline = time.monotonic() + STEP_DEADLINE
    while True:
        try:
            return fn(base)
        except StoreUnavailable:
            with stats["lock"]:
                stats["503"] += 1
        except httpx.TransportError as exc:
            raise AssertionError(f"the broker did not answer: {exc!r}") from None
        assert time.monotonic() < deadline, "a step kept failing for the whole switch-over"
        time.sleep(0.1)


def _browse(base: str, until: threading.Event, done: list, stats: dict) -> None:
    while not until.is_set():
        login = Login(ANNA)
        where = "authorize"
        try:
            _step(login.authorize, base, stats)
            where = "open"
            _step(login.open, base, stats)
            where = "redeem"
            tokens = _step(login.redeem, base, stats)
        except AssertionError as exc:
            with stats["lock"]:
                stats["failures"].append(f"{where}: {str(exc)[:150]}")
            login.close()
            continue
        done.append((login, tokens))


@pytest.mark.parametrize("how", ["planned", "sigkill"])
def test_a_master_switch_loses_no_completed_login(tmp_path, how):
    with sentinel_set(down_after_ms=1000, failover_timeout_ms=3000,
                      redis_args=RECOMMENDED_REDIS) as redis:
        port = free_port()
        cfg = write_config(tmp_path, issuer=f"http://127.0.0.1:{port}", store_url=redis.url,
                           metrics_port=free_port(),
                           store={"replicas": 1, "replica_timeout": 0.5, "timeout": 1.0})
        broker = Replica(cfg, port=port).start()
        done: list = []
        stats = {"503": 0, "failures": [], "lock": threading.Lock()}
        until = threading.Event()
        threads = [threading.Thread(target=_browse, args=(broker.url, until, done, stats))
                   for _ in range(BROWSERS)]
        try:
            for t in threads:
                t.start()
            time.sleep(1.5)
            before = len(done)
            old = redis.master_address()
            if how == "planned":
                subprocess.run(["redis-cli", "-p", str(redis.sentinel_ports[0]), "sentinel",
                                "failover", "mymaster"], check=True, capture_output=True,
                               timeout=10)
            else:
                redis.procs["master"].send_signal(signal.SIGKILL)
                redis.procs["master"].wait(10)
            deadline = time.monotonic() + 30
            while redis.master_address() == old and time.monotonic() < deadline:
                time.sleep(0.1)
            assert redis.master_address() != old, "the sentinels did not switch the master"
            if how == "sigkill":
                # With one replica, the new master has none left to replicate to until the
                # killed node is back (its pod restarts); writes wait (clean 503s) till then.
                redis.restart("master")
            time.sleep(3)  # logins go on against the new master
            until.set()
            for t in threads:
                t.join(STEP_DEADLINE * 4)
            if stats["failures"]:
                for line in broker.log_lines():
                    if line.get("level") == "error" and "store unavailable" not in str(
                            line.get("message")):
                        print("LOG", line.get("message"), str(line.get("exception"))[-1500:])
                    elif line.get("level") in ("error", "warning"):
                        print("LOG", line.get("time"), str(line.get("message"))[:200])
            assert stats["failures"] == [], stats["failures"][:3]
            assert len(done) > before, "no login completed around the switch"
            lost = [tokens for login, tokens in done if not login.still_works(broker.url, tokens)]
            print(f"{how}: {len(done)} logins completed, {stats['503']} clean 503s, "
                  f"{len(lost)} lost")
            assert lost == []
            assert httpx.get(broker.url + "/readyz", timeout=10).status_code == 200
        finally:
            until.set()
            for login, _ in done:
                login.close()
            broker.stop()
