"""Redis Sentinel fail-over under traffic, with real redis-server and redis-sentinel.

What "no login is lost" means here, precisely:

1. Every login that starts after the fail-over (the sentinels name the new master) completes
   at the first try of every step: no 503, no error.
2. While the master is gone, every request either succeeds or gets the broker's clean
   "store unavailable" answer (503: an HTML page for the browser, JSON
   `temporarily_unavailable` for /token) within a bounded time - never a 500, never a hang -
   and the same step succeeds when retried. Redis replicates asynchronously, so a write the
   old master acknowledged just before it died can be missing on the new one; a login hit by
   that sees "expired" or `invalid_grant` and is started again from /authorize, and then
   completes. Such restarts are allowed only for logins in flight at the fail-over.
"""

from __future__ import annotations

import signal
import time

import httpx
from ops_helpers import ANNA, Login, Replica, StoreUnavailable, write_config

from tests.support.redis import free_port
from tests.support.redis_sentinel import sentinel_set

STEP_DEADLINE = 20.0  # a step keeps being retried (on a clean 503) for at most this long


class Lost(Exception):
    """The store lost this login's state (acknowledged by the old master, not replicated)."""


def step(fn, *args, stats: dict) -> object:
    deadline = time.monotonic() + STEP_DEADLINE
    while True:
        started = time.monotonic()
        try:
            return fn(*args)
        except StoreUnavailable:
            stats["503"] += 1
        except AssertionError as exc:
            text = str(exc)
            if "410" in text or "invalid_grant" in text or "error_expired" in text:
                raise Lost(text) from None
            raise
        except httpx.TransportError as exc:
            raise AssertionError(f"the broker did not answer: {exc!r}") from None
        finally:
            stats["slowest"] = max(stats["slowest"], time.monotonic() - started)
        assert time.monotonic() < deadline, "a step kept failing for the whole fail-over window"
        time.sleep(0.2)


def one_login(url: str, stats: dict) -> None:
    login = Login(ANNA)
    try:
        step(login.authorize, url, stats=stats)
        step(login.open, url, stats=stats)
        step(login.redeem, url, stats=stats)
    finally:
        login.close()


def test_failover_under_traffic(tmp_path):
    with sentinel_set(down_after_ms=1000, failover_timeout_ms=3000) as redis:
        port = free_port()
        cfg = write_config(tmp_path, issuer=f"http://127.0.0.1:{port}", store_url=redis.url,
                           metrics_port=free_port())
        broker = Replica(cfg, port=port).start()
        try:
            stats = {"503": 0, "slowest": 0.0}
            for _ in range(5):
                one_login(broker.url, stats)
            assert stats["503"] == 0

            # Traffic, then the master dies mid-traffic.
            window = {"503": 0, "slowest": 0.0}
            completed = restarted = 0
            killed_at = time.monotonic()
            kill_after = 0.5
            killed = False
            failed_over = None
            began = time.monotonic()
            while time.monotonic() - began < 30:
                if not killed and time.monotonic() - began > kill_after:
                    redis.procs["master"].send_signal(signal.SIGKILL)
                    killed, killed_at = True, time.monotonic()
                try:
                    one_login(broker.url, window)
                    completed += 1
                except Lost:
                    restarted += 1
                    assert restarted <= 5
                    continue
                if killed and failed_over is None and \
                        redis.master_address() == ("127.0.0.1", redis.replica_port):
                    failed_over = time.monotonic()
                if failed_over is not None:
                    break
            assert killed and failed_over is not None, "the sentinels did not fail over in 30 s"

            # After the fail-over: every login completes at the first try of every step.
            after = {"503": 0, "slowest": 0.0}
            for _ in range(15):
                one_login(broker.url, after)
            assert after["503"] == 0, after
            assert httpx.get(broker.url + "/readyz").status_code == 200
            assert window["slowest"] < 5, window  # every answer in the window was bounded
            print(f"fail-over after {failed_over - killed_at:.1f} s; {completed} logins "
                  f"completed in the window with {window['503']} clean 503s and "
                  f"{restarted} restarts")
        finally:
            broker.stop()
        assert broker.proc.returncode == 0
        assert not [x for x in broker.log_lines() if x["level"] == "error" and "exception" in x]
