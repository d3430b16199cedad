"""Links and redirects come from configuration, never from the request.

The language switch is built from the request's path made local (percent-encoded, one
'/'), so `//evil.example/x` cannot become a protocol-relative link; no redirect takes its
host from the Host header (Starlette's trailing-slash redirect did).
"""

from __future__ import annotations

import html
import re

import pytest
from joserfc.jwk import ECKey
from starlette.routing import Mount

from broker.app import bankid_connector, create_app
from broker.config import parse_settings
from broker.store import open_store
from broker.web.pages import local_path
from tests.conftest import base_config
from tests.hardening.rawhttp import request
from tests.support.fakes import FakeConnector, FakeSource, default_users
from tests.support.redis import free_port
from tests.support.server import serve

HOSTILE_PATHS = ["//evil.example/x", "///evil.example/x", "/\\evil.example/x",
                 "/%2F%2Fevil.example/x", "/%5Cevil.example/x", "/%5C%5Cevil.example/x",
                 "/.//evil.example/x", "/%09/evil.example/x", "//evil.example/x?lang=en&a=%22"]
_LINK = re.compile(r'\b(?:href|src|action)="([^"]*)"')


@pytest.fixture(scope="module")
def site(redis, tmp_path_factory):
    """A broker with the login pages, the BankID pages and the simulator mounted."""
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    tmp = tmp_path_factory.mktemp("links")
    data = base_config(issuer, tmp / "keys", redis, ECKey.generate_key("P-256", auto_kid=True))
    data["connectors"] = {"bankid": {"environment": "simulator"}}
    settings = parse_settings(data, str(tmp / "broker.yaml"))
    app = create_app(settings, store=open_store(redis, settings.store.prefix),
                     source=FakeSource(default_users(("rp-basic",))),
                     connectors={"test": FakeConnector, "bankid": bankid_connector()})
    with serve(app, port):
        yield issuer, app


def assert_local_links(page: str, issuer: str) -> list[str]:
    links = [html.unescape(link) for link in _LINK.findall(page)]
    for link in links:
        local = link.startswith("/") and not link.startswith(("//", "/\\"))
        assert local or link.startswith((issuer + "/", "data:")), link
    return links


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_the_language_switch_stays_on_this_site(site, path):
    issuer, _ = site
    response = request(issuer, "GET", path)
    assert response.status == 404
    links = assert_local_links(response.body.decode(), issuer)
    switch = [link for link in links if "lang=" in link]
    assert len(switch) == 1, links
    if path == "//evil.example/x":  # the review's example
        assert switch == ["/evil.example/x?lang=en"]


def test_local_path_never_reads_as_another_host():
    for raw in ["//a/b", "////a", "/\\a", "\\\\a", "/\t/a", "/a\\/b", "", "a/b"]:
        made = local_path(raw)
        assert made.startswith("/") and not made.startswith("//") and "\\" not in made, made
    assert local_path("/login/abc") == "/login/abc"
    assert local_path("/login/a b/ö") == "/login/a%20b/%C3%B6"


def test_the_switch_keeps_a_real_page_and_its_query(site):
    issuer, _ = site
    response = request(issuer, "GET", "/login/doesnotexist12345?ui_locales=sv&lang=sv")
    links = assert_local_links(response.body.decode(), issuer)
    assert "/login/doesnotexist12345?ui_locales=sv&lang=en" in links


def _paths(routes, prefix: str = "") -> list[str]:
    out = []
    for route in routes:
        path = prefix + route.path.replace("{txn_id}", "abcdefgh12345678").replace(
            "{endpoint:path}", "auth").replace("{path:path}", "style.css")
        if isinstance(route, Mount):
            inner = getattr(route.app, "routes", None) or getattr(
                getattr(route.app, "router", None), "routes", None) or []
            out += _paths(inner, path) or [path]
        else:
            out.append(path)
    return out


def test_no_redirect_takes_its_host_from_the_request(site):
    """Every route of the app (and of every mounted app, the BankID simulator's too), asked
    with a trailing slash added or removed and a hostile Host: no Location names that host."""
    issuer, app = site
    paths = _paths(app.routes)
    assert "/login/bankid/abcdefgh12345678/wait" in paths and "/bankid-simulator/app" in paths
    asked = 0
    for path in paths:
        for variant in {path + "/", path.rstrip("/") or "/"}:
            for method in ("GET", "POST"):
                response = request(issuer, method, variant, host=b"evil.example")
                location = response.header("location") or ""
                assert "evil" not in location, (method, variant, location)
                assert not location.startswith("//"), location
                asked += 1
    response = request(issuer, "GET", "/login/x/", host=b"evil.example")
    assert response.status == 404 and response.header("location") is None
    assert asked > 40
