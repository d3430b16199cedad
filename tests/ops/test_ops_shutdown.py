"""Graceful shutdown of a real `broker serve`: SIGTERM stops accepting, lets requests in
flight finish within http.graceful_shutdown_seconds, runs the lifespan shutdown, exits 0."""

from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest
from ops_helpers import Replica, write_config

from tests.support.redis import free_port


def start(redis, ops_dir, graceful: int) -> Replica:
    port = free_port()
    cfg = write_config(ops_dir, issuer=f"http://127.0.0.1:{port}", store_url=redis,
                       metrics_port=free_port(), graceful=graceful)
    return Replica(cfg, port=port).start()


def in_flight(url: str, seconds: float) -> tuple[threading.Thread, dict]:
    result: dict = {}

    def run() -> None:
        try:
            result["response"] = httpx.get(f"{url}/test/slow?seconds={seconds}", timeout=30)
        except httpx.HTTPError as exc:
            result["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.5)  # the request is being served
    return thread, result


def test_sigterm_finishes_the_request_in_flight(redis, ops_dir):
    r = start(redis, ops_dir, graceful=10)
    try:
        thread, result = in_flight(r.url, 2.5)
        sent = time.monotonic()
        r.signal(signal.SIGTERM)
        # New connections are refused while the old request is still running.
        refused = False
        while time.monotonic() - sent < 1.5:
            try:
                httpx.get(r.url + "/healthz", timeout=0.5)
            except httpx.TransportError:
                refused = True
                break
            time.sleep(0.05)
        assert refused
        assert thread.is_alive()
        assert r.wait(timeout=10) == 0
        took = time.monotonic() - sent
        thread.join(5)
        assert result["response"].status_code == 200
        assert result["response"].text == "slept 2.5"
        assert 1.5 < took < 10
    finally:
        r.kill()
    messages = [x["message"] for x in r.log_lines()]
    assert "Application shutdown complete." in messages  # store and HTTP pools closed


def test_graceful_time_is_a_bound(redis, ops_dir):
    """A request that outlives the graceful time does not hold the process."""
    r = start(redis, ops_dir, graceful=1)
    try:
        thread, result = in_flight(r.url, 20)
        sent = time.monotonic()
        r.signal(signal.SIGTERM)
        code = r.wait(timeout=8)
        took = time.monotonic() - sent
        thread.join(5)
    finally:
        r.kill()
    assert code == 0
    assert took < 4, took
    assert "response" not in result or result["response"].status_code >= 500


@pytest.mark.parametrize("workers", [2])
def test_sigterm_with_workers(redis, ops_dir, workers):
    port = free_port()
    cfg = write_config(ops_dir, issuer=f"http://127.0.0.1:{port}", store_url=redis,
                       metrics_port=free_port(), graceful=10)
    r = Replica(cfg, port=port, workers=workers).start()
    try:
        thread, result = in_flight(r.url, 2)
        r.signal(signal.SIGTERM)
        assert r.wait(timeout=12) == 0
        thread.join(5)
        assert result["response"].status_code == 200
    finally:
        r.kill()
