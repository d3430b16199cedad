"""Discovery points only at pages that exist: `service_documentation` is the operator's
`service_documentation` setting (e.g. the published integration guide), or absent."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from broker.app import create_app
from broker.config import ConfigError, parse_settings
from tests.support.redis import free_port
from tests.support.server import serve

DEMO_AUTHZ = Path(__file__).resolve().parents[2] / "broker" / "demo" / "authz.yaml"


def _settings(tmp: Path, issuer: str = "http://127.0.0.1:8080", **extra):
    shutil.copy(DEMO_AUTHZ, tmp / "authz.yaml")
    return parse_settings({
        "issuer": issuer, "store": {"url": "memory://"},
        "keys": {"dir": str(tmp / "keys"), "generate": True},
        "audit": {"target": str(tmp / "audit.log")},
        "clients": [{"client_id": "rp", "client_name": "RP", "client_secret": "s" * 32,
                     "redirect_uris": ["https://rp.example/cb"]}],
        "authorization": {"source": "file", "path": str(tmp / "authz.yaml")},
        **extra,
    }, str(tmp / "broker.yaml"))


def test_without_the_setting_discovery_names_no_documentation(tmp_path):
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    with serve(create_app(_settings(tmp_path, issuer)), port):
        meta = httpx.get(issuer + "/.well-known/openid-configuration").json()
        assert "service_documentation" not in meta
        # Every URL discovery names on the broker itself is a route that exists.
        for key, value in meta.items():
            if isinstance(value, str) and value.startswith(issuer + "/"):
                assert httpx.get(value).status_code != 404, key


def test_the_setting_is_published(tmp_path):
    url = "https://docs.example.kommun.se/broker/integration.html"
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    with serve(create_app(_settings(tmp_path, issuer, service_documentation=url)), port):
        meta = httpx.get(issuer + "/.well-known/openid-configuration").json()
    assert meta["service_documentation"] == url


@pytest.mark.parametrize("bad", ["http://docs.example.kommun.se/", "docs/integration.md",
                                 "https://docs.example/#top"])
def test_a_bad_url_is_refused_naming_the_key(tmp_path, bad):
    with pytest.raises(ConfigError, match=r"service_documentation: .*"):
        _settings(tmp_path, service_documentation=bad)
