"""The broker on Redis Cluster: a grant's keys live in one slot, and a master's failover
under load loses no completed login (store.replicas 1: a write counts once the shard's
replica has it)."""

from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest
from redis.cluster import RedisCluster

from tests.grants.grants_support import login, refresh
from tests.support.brokers import running_broker
from tests.support.redis_cluster import redis_cluster

BROWSERS = 8


def test_every_key_of_a_grant_is_in_one_slot(redis_cluster_url, tmp_path):
    with running_broker(redis_cluster_url, tmp_path) as b:
        rp, tokens = login(b)
        refresh(rp, tokens["refresh_token"])
        family = tokens["refresh_token"].split(".")[0]
        prefix = b.broker.settings.store.prefix
        host, port = redis_cluster_url.split("//")[1].split(",")[0].split(":")
        cluster = RedisCluster(host=host, port=int(port))
        try:
            keys = [k.decode() for k in cluster.scan_iter(match=f"{prefix}*{{{family}}}*",
                                                           target_nodes=RedisCluster.ALL_NODES)]
            kinds = {k[len(prefix):].split(":")[0].split("|")[0] for k in keys}
            # The code (taken), its spent marker, the family, its state, two access tokens,
            # and the operation keys of the redemption and the rotation.
            assert {"code-spent", "fam", "fam-state", "at"} <= kinds, kinds
            assert len({cluster.keyslot(k) for k in keys}) == 1
        finally:
            cluster.close()


def _step(fn, stats):
    deadline = time.monotonic() + 60  # a loaded CI machine slows a cluster's failover down
    while True:
        try:
            result = fn()
        except (httpx.TransportError, AssertionError) as exc:
            raise AssertionError(f"not a clean answer: {exc!r}") from None
        if not isinstance(result, httpx.Response) or result.status_code != 503:
            return result
        with stats["lock"]:
            stats["503"] += 1
        assert time.monotonic() < deadline, "a step kept failing through the failover"
        time.sleep(0.1)


def _browse(b, until, done, stats):
    while not until.is_set():
        rp = b.rp()
        browser = b.browser()
        try:
            params = rp.params()
            first = _step(lambda p=params: browser.get("/authorize", params=p), stats)
            answer = _step(lambda r=first: rp.follow(browser, r), stats)
            code = rp.callback(answer)["code"]
            tokens = _step(lambda c=code: rp.token(c), stats)
            assert tokens.status_code == 200, tokens.text
            done.append((rp, browser, tokens.json()))
        except AssertionError as exc:
            with stats["lock"]:
                stats["failures"].append(str(exc)[:300])
            browser.close()


@pytest.mark.parametrize("how", ["planned", "sigkill"])
def test_a_master_failover_under_load_loses_no_completed_login(tmp_path, how):
    with redis_cluster(node_timeout_ms=2000) as cluster, \
            running_broker(cluster.url, tmp_path, store={"replicas": 1, "replica_timeout": 0.5,
                                                        "timeout": 1.0}) as b:
        done: list = []
        stats = {"503": 0, "failures": [], "lock": threading.Lock()}
        until = threading.Event()
        threads = [threading.Thread(target=_browse, args=(b, until, done, stats))
                   for _ in range(BROWSERS)]
        for t in threads:
            t.start()
        try:
            time.sleep(1.5)
            before = len(done)
            master = cluster.masters()[0]
            replica = cluster.replica_of(master)
            if how == "planned":
                cluster.cli(replica, "cluster", "failover")
            else:
                cluster.procs[master].send_signal(signal.SIGKILL)
                cluster.procs[master].wait(10)
            deadline = time.monotonic() + 60
            while replica not in cluster.masters() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert replica in cluster.masters(), "the replica was not promoted"
            if how == "sigkill":
                cluster.restart(master)  # the pod comes back, as the promoted one's replica
            time.sleep(3)
            until.set()
            for t in threads:
                t.join(120)
        finally:
            until.set()
        assert stats["failures"] == [], stats["failures"][:3]
        assert len(done) > before, "no login completed around the failover"
        lost = [tokens for rp, _, tokens in done
                if refresh(rp, tokens["refresh_token"]).status_code != 200]
        print(f"{how}: {len(done)} logins completed, {stats['503']} clean 503s, "
              f"{len(lost)} lost")
        assert lost == []
        # Their SSO sessions too: a silent login at the same browser still works.
        for rp, browser, _ in done[-5:]:
            assert "code" in rp.callback(rp.authorize(browser, prompt="none"))
            browser.close()
