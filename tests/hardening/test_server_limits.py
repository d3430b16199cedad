"""`broker serve` refuses oversized request heads and cuts off requests that never finish
(broker/http_limits.py), measured on a real `broker serve` process over raw sockets.

The process runs with short timeouts (2 s) so the test is quick; the defaults documented
in docs/operations.md are checked against the settings model at the end. Every wait is
bounded.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from broker.config import HttpSettings
from broker.keys import KeyRing
from tests.hardening.rawhttp import address, parse_response, read_all
from tests.support.redis import free_port

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 2  # header_timeout, body_timeout and keep_alive_timeout of the process under test
SLACK = 3.0  # scheduling on a loaded 2-core machine


@dataclass
class Served:
    url: str
    log: Path  # its stderr


@pytest.fixture(scope="module")
def served(redis, tmp_path_factory):
    """A real `broker serve` (one worker) with 2-s timeouts; yields its base URL."""
    tmp = tmp_path_factory.mktemp("limits")
    KeyRing(tmp / "keys", retention=600).generate_missing()
    shutil.copy(REPO / "broker" / "demo" / "authz.yaml", tmp / "authz.yaml")
    port, metrics_port = free_port(), free_port()
    config = tmp / "broker.yaml"
    config.write_text(yaml.safe_dump({
        "issuer": f"http://127.0.0.1:{port}",
        "store": {"url": redis, "prefix": f"limits{os.getpid()}:"},
        "keys": {"dir": str(tmp / "keys")},
        "audit": {"target": str(tmp / "audit.log")},
        "metrics": {"port": metrics_port},
        "authorization": {"source": "file", "path": "authz.yaml"},
        "http": {"header_timeout": TIMEOUT, "body_timeout": TIMEOUT,
                 "keep_alive_timeout": TIMEOUT},
        "clients": [{"client_id": "rp", "client_name": "RP", "client_secret": "r" * 32,
                     "redirect_uris": ["https://rp.example/cb"]}],
    }))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    stderr = (tmp / "stderr.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "broker.cli", "serve", "--config", str(config),
                             "--host", "127.0.0.1", "--port", str(port)], cwd=tmp, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            assert proc.poll() is None, (tmp / "stderr.log").read_text()
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "broker serve did not start"
            time.sleep(0.1)
        yield Served(url, tmp / "stderr.log")
    finally:
        proc.terminate()
        proc.wait(15)


def exchange(url: str, head: bytes, *, body: bytes = b"", wait: float = 10.0
             ) -> tuple[int | None, float]:
    """Send `head` (+ `body`) as fast as the server takes it, then read until it closes.
    The status it answered (None: closed without one) and the seconds until it closed."""
    start = time.monotonic()
    with socket.create_connection(address(url), timeout=wait) as sock:
        sock.settimeout(wait)
        try:
            sock.sendall(head + body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused while we were still sending: the answer is in the buffer
        data = read_all(sock, start + wait)
    response = parse_response(data)
    return (response.status if response else None), time.monotonic() - start


def still_serves(url: str) -> None:
    assert httpx.get(url + "/healthz", timeout=5).status_code == 200


def test_a_1_mb_header_is_refused(served):
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1024 * 1024 + b"\r\n\r\n"
    status, took = exchange(served.url, head)
    assert status == 431 and took < SLACK + 2
    still_serves(served.url)


def test_5000_headers_are_refused(served):
    fields = b"".join(b"X-H%d: v\r\n" % i for i in range(5000))
    status, _ = exchange(served.url, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
    assert status == 431
    still_serves(served.url)


def test_more_fields_than_allowed_are_refused_even_when_small(served):
    """150 fields of 6 bytes: far below the byte limit, above the count (100)."""
    fields = b"".join(b"a%d: b\r\n" % i for i in range(150))
    status, _ = exchange(served.url, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
    assert status == 431


def test_ordinary_requests_within_the_limits_pass(served):
    fields = b"".join(b"X-H%d: v\r\n" % i for i in range(60))
    cookie = b"Cookie: a=" + b"c" * 8000 + b"\r\n"
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + fields + cookie + b"\r\n"
    status, _ = exchange(served.url, head)
    assert status == 200


def test_an_incomplete_body_is_cut_off_in_time(served):
    head = (b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded"
            b"\r\nContent-Length: 1000\r\n\r\n")
    status, took = exchange(served.url, head, body=b"grant_type=", wait=TIMEOUT + SLACK + 5)
    assert status == 408
    assert TIMEOUT - 0.5 <= took <= TIMEOUT + SLACK, took
    still_serves(served.url)
    log = served.log.read_text()
    assert "unhandled error" not in log and "408" in log  # the app saw a client that left


def test_an_unfinished_huge_header_is_refused_before_it_ends(served):
    """A header value that never ends is refused once it is too large, not at the timeout."""
    start = time.monotonic()
    with socket.create_connection(address(served.url), timeout=10) as sock:
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = read_all(sock, start + TIMEOUT + SLACK)
    response = parse_response(data)
    assert response is not None and response.status == 431
    assert time.monotonic() - start < TIMEOUT, "refused by size, not by the header timeout"


def test_headers_that_trickle_in_are_cut_off_in_time(served):
    start = time.monotonic()
    with socket.create_connection(address(served.url), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        closed_by_server = False
        for _ in range(int((TIMEOUT + SLACK) / 0.5) + 2):  # one byte every half second
            try:
                sock.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                closed_by_server = True
                break
            time.sleep(0.5)
        data = read_all(sock, time.monotonic() + 2)
    took = time.monotonic() - start
    response = parse_response(data)
    assert (response is not None and response.status == 408) or closed_by_server
    assert took <= TIMEOUT + SLACK + 2.5, took


def test_an_idle_connection_is_closed(served):
    start = time.monotonic()
    with socket.create_connection(address(served.url), timeout=10) as sock:
        data = read_all(sock, start + TIMEOUT + SLACK + 3)
    took = time.monotonic() - start
    assert data == b"" and took <= TIMEOUT + SLACK, took


def test_the_documented_defaults_are_the_settings_defaults():
    text = (REPO / "docs" / "operations.md").read_text()
    http = HttpSettings()
    for key, value in [("max_header_bytes", "16384"), ("max_header_fields", "100"),
                       ("header_timeout", "10"), ("body_timeout", "10"),
                       ("keep_alive_timeout", "5")]:
        assert f"`http.{key}` | {value} " in text, key
        assert float(getattr(http, key)) == float(value)


def test_the_chart_asks_the_ingress_for_the_same_limits():
    from tests.deploy.deploy_helpers import kinds, render

    limits = {"nginx.ingress.kubernetes.io/proxy-body-size": "64k",
              "nginx.ingress.kubernetes.io/client-body-buffer-size": "64k",
              "nginx.ingress.kubernetes.io/proxy-request-buffering": "on"}
    ingresses = kinds(render("all-features.yaml"), "Ingress")
    assert {i["metadata"]["name"] for i in ingresses} == {"broker", "broker-siths"}
    for ingress in ingresses:
        annotations = ingress["metadata"]["annotations"]
        assert {k: annotations.get(k) for k in limits} == limits, ingress["metadata"]["name"]
    assert HttpSettings().max_body_bytes == 64 * 1024  # what "64k" stands for
    own = render(sets=("ingress.annotations.nginx\\.ingress\\.kubernetes\\.io/proxy-body-size=1m",))
    main = kinds(own, "Ingress")[0]["metadata"]["annotations"]
    assert main["nginx.ingress.kubernetes.io/proxy-body-size"] == "1m"  # the values win
