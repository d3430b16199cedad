"""Shared fixtures: a real Redis for the whole run, and a running broker per module."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import pytest
from joserfc.jwk import ECKey

from broker.app import create_app
from broker.config import STANDARD_SCOPES, parse_settings
from broker.store import open_store
from tests.support.fakes import FakeConnector, FakeSource, default_users
from tests.support.redis import free_port, redis_url
from tests.support.rp import FakeRP
from tests.support.server import serve

REDIRECT = "https://rp.example/cb"


@pytest.fixture
def clock():
    """A wall clock the test moves on (create_app(clock=...)): no sleeping through waits."""
    from tests.support.brokers import FakeClock

    return FakeClock()


@pytest.fixture(scope="session")
def redis_cluster_url() -> str:
    """A 3-master, 3-replica Redis Cluster for the whole run (started on first use)."""
    from tests.support.redis_cluster import redis_cluster

    with redis_cluster() as cluster:
        yield cluster.url


@pytest.fixture(scope="session")
def redis_sentinel_url() -> str:
    """One master, one replica, three sentinels for the whole run (started on first use)."""
    from tests.support.redis_sentinel import sentinel_set

    with sentinel_set() as sentinels:
        yield sentinels.url


BACKENDS = ("redis", "sentinel", "cluster", "memory")


@pytest.fixture(params=BACKENDS)
def store_url(request) -> str:
    """Each state store the broker runs on: plain Redis, Sentinel, Redis Cluster, and the
    in-memory store of `broker demo` (the broker runs in this process)."""
    return _store_url(request, request.param)


def _store_url(request, backend: str) -> str:
    if backend == "memory":
        return "memory://"
    name = {"redis": "redis", "sentinel": "redis_sentinel_url",
            "cluster": "redis_cluster_url"}[backend]
    return request.getfixturevalue(name)


@pytest.fixture(scope="session")
def redis() -> str:
    with redis_url() as url:
        yield url


def base_config(issuer: str, keys_dir: Path, redis: str, jwt_key: ECKey) -> dict:
    return {
        "issuer": issuer,
        "store": {"url": redis, "prefix": f"t{secrets.token_hex(4)}:"},
        "keys": {"dir": str(keys_dir), "generate": True},
        "tokens": {"refresh_grace": 2},
        "pairwise_salt": "pairwise-salt-for-tests-0123456789",
        "audit": {"target": str(keys_dir.parent / "audit.log")},
        "clients": [
            {"client_id": "rp-basic", "client_name": "Lifecare", "client_secret": "s" * 32,
             "redirect_uris": [REDIRECT], "post_logout_redirect_uris": ["https://rp.example/bye"],
             "scopes": ["openid", "profile", "https://id.oidc.se/scope/naturalPersonNumber",
                        "assignments"]},
            {"client_id": "rp-post", "client_name": "MCSS", "client_secret": "p" * 32,
             "token_endpoint_auth_method": "client_secret_post", "redirect_uris": [REDIRECT],
             "subject_type": "pairwise", "scopes": list(STANDARD_SCOPES)},
            {"client_id": "rp-jwt", "client_name": "JWT RP",
             "token_endpoint_auth_method": "private_key_jwt",
             "jwks": {"keys": [jwt_key.as_dict(private=False)]},
             "redirect_uris": [REDIRECT], "id_token_signed_response_alg": "ES256",
             "scopes": list(STANDARD_SCOPES),
             "userinfo_signed_response_alg": "RS256", "access_token_format": "jwt",
             "claims": {"commissionName": "role", "healthCareUnitName": None}},
            {"client_id": "rp-flat", "client_name": "Flat RP", "client_secret": "f" * 32,
             "redirect_uris": [REDIRECT], "flat_claims": True,
             "scopes": ["openid", "profile", "assignments"]},
        ],
    }


class Running:
    def __init__(self, issuer, app, source, connector_box, jwt_key):
        self.issuer = issuer
        self.app = app
        self.broker = app.state.broker
        self.source = source
        self.connector_box = connector_box
        self.jwt_key = jwt_key

    def rp(self, client_id="rp-basic") -> FakeRP:
        if client_id == "rp-basic":
            return FakeRP(self.issuer, client_id, REDIRECT, "s" * 32)
        if client_id == "rp-post":
            return FakeRP(self.issuer, client_id, REDIRECT, "p" * 32, auth="client_secret_post")
        if client_id == "rp-flat":
            return FakeRP(self.issuer, client_id, REDIRECT, "f" * 32)
        return FakeRP(self.issuer, client_id, REDIRECT, auth="private_key_jwt", key=self.jwt_key)

    def browser(self) -> httpx.Client:
        return httpx.Client(base_url=self.issuer, timeout=10)

    @property
    def connector(self) -> FakeConnector:
        return self.connector_box[0]


@pytest.fixture(scope="module")
def broker_server(redis, tmp_path_factory):
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    tmp = tmp_path_factory.mktemp("broker")
    jwt_key = ECKey.generate_key("P-256", auto_kid=True)
    settings = parse_settings(base_config(issuer, tmp / "keys", redis, jwt_key), str(tmp / "broker.yaml"))
    source = FakeSource(default_users(("rp-basic", "rp-post", "rp-jwt", "rp-flat")))
    box: list[FakeConnector] = []

    def factory(ctx):
        box.append(FakeConnector(ctx))
        return box[-1]

    app = create_app(settings, store=open_store(redis, settings.store.prefix), source=source,
                     connectors={"test": factory})
    with serve(app, port) as url:
        assert url == issuer
        yield Running(issuer, app, source, box, jwt_key)


def pytest_collection_modifyitems(config, items):
    """A hung Playwright driver (no answer at all, seen about once in twenty tests on a
    loaded 2-core machine) is cut off after 90 s and that test is run again, up to twice.
    A failed assertion is never retried."""
    for item in items:
        if item.get_closest_marker("browser") is None:
            continue
        item.add_marker(pytest.mark.timeout(90))
        item.add_marker(pytest.mark.flaky(reruns=2, only_rerun=["Timeout", "TargetClosedError"]))
