"""`connectors.siths` settings: shapes that work and clear messages for those that do not."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from broker.config import ConfigError, parse_settings
from broker.connectors.siths import SithsSettings, classify_issuer


def test_full_proxy_settings():
    s = SithsSettings.model_validate({
        "mode": "proxy",
        "login_url": "https://siths.login.example.se/login/siths/",
        "proxy": {"format": "traefik", "trusted_proxies": ["10.0.0.0/8", "unix"]},
        "trust": {"ca_bundle": "siths-ca.pem", "issuers": ["SITHS e-id Person HSA-id 3 CA v1"],
                  "allow_reserve_cards": True},
        "revocation": {"ocsp_url": "http://ocsp.sjunet.example", "soft_fail": False,
                       "crl_urls": {"SITHS e-id Person HSA-id 3 CA v1": "http://crl.example/x.crl"}},
    })
    assert s.proxy.header_name == "x-forwarded-tls-client-cert"
    assert s.proxy.trust_unix_socket
    assert [str(n) for n in s.proxy.networks()] == ["10.0.0.0/8"]
    assert s.revocation.soft_fail is False and s.revocation.ocsp


def test_design_sketch_shorthand_is_accepted():
    s = SithsSettings.model_validate({"mode": "proxy", "header": "SSL-Client-Cert",
                                      "trusted_proxies": ["10.0.0.0/8"], "ca_bundle": "siths-ca.pem"})
    assert s.proxy.header_name == "ssl-client-cert"
    assert s.proxy.format == "nginx"
    assert s.trust.ca_bundle == "siths-ca.pem"


def test_rfc9440_default_chain_header():
    s = SithsSettings.model_validate({"proxy": {"format": "rfc9440", "trusted_proxies": ["::1"]},
                                      "trust": {"ca_bundle": "x"}})
    assert (s.proxy.header_name, s.proxy.chain_header_name) == ("client-cert", "client-cert-chain")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"trust": {"ca_bundle": "x"}}, "trusted_proxies"),
        ({"proxy": {"trusted_proxies": ["0.0.0.0/0"]}, "trust": {"ca_bundle": "x"}}, "every address"),
        ({"proxy": {"trusted_proxies": ["proxy.local"]}, "trust": {"ca_bundle": "x"}}, "CIDR"),
        ({"proxy": {"trusted_proxies": ["10.0.0.1"], "header": "bad header"},
          "trust": {"ca_bundle": "x"}}, "header name"),
        ({"proxy": {"trusted_proxies": ["10.0.0.1"], "format": "apache"},
          "trust": {"ca_bundle": "x"}}, "nginx"),
        ({"mode": "direct", "trust": {"ca_bundle": "x"}}, "direct section"),
        ({"proxy": {"trusted_proxies": ["10.0.0.1"]}, "trust": {"ca_bundle": "x",
          "issuers": ["SITHS e-id Function CA v1"]}}, "level of assurance"),
        ({"proxy": {"trusted_proxies": ["10.0.0.1"]}}, "trust"),
        ({"proxy": {"trusted_proxies": ["10.0.0.1"]}, "trust": {"ca_bundle": "x"},
          "revocation": {"ocsp": False, "crl": False}}, "every login fails"),
        ({"proxy": {"trusted_proxies": ["10.0.0.1"]}, "trust": {"ca_bundle": "x"},
          "login_url": "http://siths.example.se/"}, "https"),
        ({"proxy": {"trusted_proxies": ["10.0.0.1"]}, "trust": {"ca_bundle": "x"},
          "revocation": {"ocsp_url": "ldap://x"}}, "http"),
        ({"proxy": {"trusted_proxies": ["10.0.0.1"]}, "trust": {"ca_bundle": "x"}, "oops": 1},
         "Extra inputs"),
        ({"header": "a", "proxy": {"header": "b", "trusted_proxies": ["10.0.0.1"]},
          "trust": {"ca_bundle": "x"}}, "given twice"),
    ],
)
def test_bad_settings_say_why(data, message):
    with pytest.raises(ValidationError, match=message):
        SithsSettings.model_validate(data)


def test_errors_name_the_key_through_the_main_config():
    with pytest.raises(ConfigError) as info:
        parse_settings({"issuer": "https://login.example.se",
                        "connectors": {"siths": {"proxy": {"trusted_proxies": ["nope"]},
                                                 "trust": {"ca_bundle": "x"}}}}, "broker.yaml", env={})
    assert "broker.yaml: connectors.siths.proxy.trusted_proxies" in str(info.value)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("SITHS e-id Person HSA-id 3 CA v1", ("hsa-id", 3)),
     ("TEST SITHS e-id Person ID 3 CA v1", ("person-id", 3)),
     ("SYSTEMTEST SITHS e-id Person HSA-id 2 CA v1", ("hsa-id", 2)),
     ("SITHS e-id Person ID 2 CA v1", ("person-id", 2)),
     ("SITHS e-id Person ID Mobile CA v1", ("person-id", 3)),
     ("SITHS e-id Function CA v1", None),
     ("SITHS e-id Root CA v2", None),
     ("SITHS Type 1 CA v1", None)],
)
def test_issuer_classification(name, expected):
    assert classify_issuer(name) == expected
