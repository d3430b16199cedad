"""The connector's wiring: configuration it refuses, the acr it offers, the host it answers on."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from broker.app import create_app
from broker.config import ConfigError, parse_settings
from broker.connectors import LOA2, LOA3
from broker.store import MemoryStore
from tests.support.fakes import FakeSource, default_users

ISSUER = "https://login.example.kommun.se"
LOGIN_URL = "https://siths.login.example.kommun.se:8443/login/siths/"


@pytest.fixture(scope="module")
def build(tmp_path_factory, pki_server, siths_helpers):
    """create_app with a connectors.siths block (defaults overridden by keyword)."""
    tmp = tmp_path_factory.mktemp("siths-connector")
    (tmp / "ca.pem").write_bytes(pki_server.bundle_pem())

    def app(**siths):
        block = {"mode": "proxy", "login_url": LOGIN_URL,
                 "proxy": {"trusted_proxies": ["10.0.0.0/8"]}, "trust": {"ca_bundle": "ca.pem"}}
        block.update(siths)
        config = siths_helpers.config(ISSUER, tmp, "memory://", block)
        settings = parse_settings(config, str(tmp / "broker.yaml"))
        # A non-loopback issuer with the test PKI and generated keys: test-only settings.
        return create_app(settings, store=MemoryStore(), allow_test_only=True,
                          source=FakeSource(default_users((siths_helpers.client,))))

    return app


@pytest.mark.parametrize(("change", "complaint"), [
    ({"login_url": None}, "connectors.siths.login_url: required"),
    ({"login_url": "https://login.example.kommun.se/login/siths/"}, "another host than the issuer"),
    ({"login_url": "https://siths.login.example.kommun.se/siths/"}, "path must be /login/siths/"),
    ({"login_url": "https://siths.login.example.kommun.se/login/siths"}, "path must be /login/siths/"),
    ({"trust": {"ca_bundle": "missing.pem"}}, "connectors.siths.trust.ca_bundle"),
])
def test_unusable_configuration_stops_start_up_naming_the_key(build, change, complaint):
    with pytest.raises(ConfigError, match=complaint):
        build(**change)


def test_offers_loa3_and_loa2_only_with_reserve_cards(build):
    assert build().state.broker.connectors["siths"].acr_values == (LOA3,)
    app = build(trust={"ca_bundle": "ca.pem", "allow_reserve_cards": True})
    assert app.state.broker.connectors["siths"].acr_values == (LOA3, LOA2)
    assert app.state.broker.acr_values()[:2] == [LOA3, LOA2]


@pytest.mark.parametrize(("host", "served"), [
    ("siths.login.example.kommun.se:8443", True),
    ("SITHS.login.example.kommun.se:8443", True),
    ("siths.login.example.kommun.se", True),  # a proxy with `Host $host` drops the port
    ("siths.login.example.kommun.se:443", False),
    ("login.example.kommun.se", False),
    ("siths.login.example.kommun.se.evil.example:8443", False),
    ("siths.login.example.kommun.se:bad", False),
    ("", False),
])
def test_certificate_endpoint_answers_on_the_siths_host_only(build, host, served):
    connector = build().state.broker.connectors["siths"]
    scope = {"type": "http", "method": "GET", "path": "/login/siths/", "query_string": b"",
             "headers": [(b"host", host.encode())] if host else []}
    assert connector.on_siths_host(Request(scope)) is served
