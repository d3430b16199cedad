"""Logs: JSON lines with a request id that goes back in the response; forwarded headers and
incoming request ids count only from trusted proxies; no personal numbers or secrets."""

from __future__ import annotations

import json
import logging
import re
import sys

import httpx
import pytest
from ops_helpers import ANNA, Login, Replica, write_config

from broker.app import create_app
from broker.config import parse_settings
from broker.logs import AccessFormatter, JsonFormatter, scrub
from broker.store import MemoryStore
from tests.support.fakes import FakeSource, default_users
from tests.support.redis import free_port
from tests.support.replica_app import TEST_ROUTES

HEX_ID = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("logs")
    settings = parse_settings({
        "issuer": "http://127.0.0.1:1",
        "keys": {"dir": str(tmp / "keys"), "generate": True},
        "audit": {"target": str(tmp / "audit.log")},
        "http": {"trusted_proxies": ["10.0.0.0/8"]},
        "clients": [{"client_id": "rp", "client_name": "RP", "client_secret": "s" * 32,
                     "redirect_uris": ["https://rp.example/cb"]}],
    }, str(tmp / "broker.yaml"))
    return create_app(settings, store=MemoryStore(), source=FakeSource(default_users(("rp",))),
                      connectors={}, extra_routes=list(TEST_ROUTES))


async def whoami(app, peer: str, headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://broker") as http:
        return await http.get("/test/whoami", headers=headers)


SPOOF = {"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https",
         "X-Request-ID": "chosen-by-the-caller-1"}


async def test_untrusted_peer_cannot_spoof(app):
    r = await whoami(app, "203.0.113.9", SPOOF)
    body = r.json()
    assert body["client_ip"] == "203.0.113.9" and body["scheme"] == "http"
    assert r.headers["x-request-id"] != "chosen-by-the-caller-1"
    assert HEX_ID.match(r.headers["x-request-id"])
    assert body["request_id"] == r.headers["x-request-id"]


async def test_trusted_proxy_is_believed(app):
    r = await whoami(app, "10.1.2.3", {**SPOOF, "X-Forwarded-For": "203.0.113.50, 198.51.100.7, 10.9.9.9"})
    body = r.json()
    # The nearest address that is not one of ours; the TCP peer stays in scope["client"]
    # (the SITHS intake needs it).
    assert body["client_ip"] == "198.51.100.7"
    assert body["peer"] == "10.1.2.3"
    assert body["scheme"] == "https"
    assert r.headers["x-request-id"] == "chosen-by-the-caller-1"


@pytest.mark.parametrize("bad", ["short", "x" * 200, "has space in it", "evil\"quote1234",
                                 "-leading-dash-1234"])
async def test_malformed_request_id_is_replaced(app, bad):
    r = await whoami(app, "10.1.2.3", {"X-Request-ID": bad})
    assert r.headers["x-request-id"] != bad and HEX_ID.match(r.headers["x-request-id"])


def test_scrub_masks_personal_numbers_and_credentials():
    text = ("pnr 199001012385 and 19900101-2385, code=abc123&client_secret=hunter22 "
            "Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig login_hint=199001012385")
    out = scrub(text)
    for secret in ("2385", "abc123", "hunter22", "eyJhbGciOiJSUzI1NiJ9"):
        assert secret not in out, out
    assert "19900101****" in out
    assert scrub("order 1234567890123456 at 12:00") == "order 1234567890123456 at 12:00"


def test_formatters_write_one_json_object_per_line():
    record = logging.LogRecord("broker.x", logging.ERROR, __file__, 1,
                               "login by %s failed", ("199001012385",), None)
    try:
        raise ValueError("token=abcdef123456")
    except ValueError:
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["level"] == "error" and data["logger"] == "broker.x"
    assert data["message"] == "login by 19900101**** failed"
    assert "abcdef123456" not in data["exception"] and "ValueError" in data["exception"]

    access = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                               '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", "/authorize?login_hint=199001012385",
                                "1.1", 303), None)
    data = json.loads(AccessFormatter().format(access))
    assert data["path"] == "/authorize" and data["status"] == 303 and data["method"] == "GET"


def test_served_logs_are_json_with_the_request_id(redis, ops_dir):
    """A real `broker serve` behind a trusted proxy (loopback): every stderr line is JSON,
    the access line carries the forwarded client and the proxy's request id, and neither
    the login's personal number nor the code appear anywhere."""
    port = free_port()
    cfg = write_config(ops_dir, issuer=f"http://127.0.0.1:{port}", store_url=redis,
                       metrics_port=free_port(), trusted_proxies=["127.0.0.1/32"])
    r = Replica(cfg, port=port).start()
    try:
        login = Login(ANNA)
        login.browser.headers.update({"X-Request-ID": "edge-4f1c2a9e-0001",
                                      "X-Forwarded-For": "192.0.2.55"})
        login.authorize(r.url)
        opened = login.open(r.url)
        assert opened.headers["x-request-id"] == "edge-4f1c2a9e-0001"
        login.redeem(r.url)
        boom = httpx.get(r.url + "/test/boom")
        assert boom.status_code == 500
        # Starlette answers a crash outside every middleware; the page still has them all.
        assert "frame-ancestors 'none'" in boom.headers["content-security-policy"]
        assert boom.headers["x-content-type-options"] == "nosniff"
        assert boom.headers["cache-control"] == "no-store"
        assert "Traceback" not in boom.text
    finally:
        r.stop()
    lines = r.log_lines()  # json.loads of every line: fails on any non-JSON line
    access = [x for x in lines if x["logger"] == "uvicorn.access"]
    login_lines = [x for x in access if x.get("request_id") == "edge-4f1c2a9e-0001"]
    assert {x["path"].split("/")[1] for x in login_lines} == {"authorize", "login"}
    assert all(x["client"] == "192.0.2.55" for x in login_lines)
    assert all(x["path"].count("?") == 0 for x in access)
    flow = [x for x in lines if x["logger"] == "broker.oidc.flow"]
    assert flow and flow[0]["request_id"] == "edge-4f1c2a9e-0001"
    crash = [x for x in lines if x["level"] == "error" and "exception" in x]
    assert crash and HEX_ID.match(crash[0]["request_id"])
    assert boom.headers["x-request-id"] == crash[0]["request_id"]  # what to quote to IT
    everything = r.stderr()
    assert ANNA not in everything and login.code not in everything
