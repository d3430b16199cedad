"""A broker with the BankID connector in simulator mode (simulator in-process), real Redis."""

from __future__ import annotations

import secrets

import pytest

from broker.app import create_app
from broker.config import STANDARD_SCOPES, parse_settings
from broker.store import open_store
from tests.support.fakes import FakeSource, default_users
from tests.support.redis import free_port
from tests.support.rp import FakeRP
from tests.support.server import serve

REDIRECT = "https://rp.example/cb"


def bankid_config(issuer: str, redis: str, keys_dir, **bankid) -> dict:
    return {
        "issuer": issuer,
        "store": {"url": redis, "prefix": f"b{secrets.token_hex(4)}:"},
        "keys": {"dir": str(keys_dir), "generate": True},
        "audit": {"target": str(keys_dir.parent / "audit.log")},
        "clients": [{"client_id": "lifecare", "client_name": "Lifecare", "client_secret": "l" * 32,
                     "redirect_uris": [REDIRECT], "scopes": list(STANDARD_SCOPES)}],
        "connectors": {"bankid": {"environment": "simulator", **bankid}},
    }


class BankIDBroker:
    def __init__(self, issuer, app, tmp):
        self.issuer = issuer
        self.app = app
        self.broker = app.state.broker
        self.tmp = tmp

    def rp(self) -> FakeRP:
        return FakeRP(self.issuer, "lifecare", REDIRECT, "l" * 32)

    @property
    def simulator(self):
        return self.broker.extra_mounts["/bankid-simulator"].state.simulator


def start_broker(redis, tmp, **bankid):
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    settings = parse_settings(bankid_config(issuer, redis, tmp / "keys", **bankid), str(tmp / "b.yaml"))
    source = FakeSource(default_users(("lifecare",)))
    app = create_app(settings, store=open_store(redis, settings.store.prefix), source=source)
    return issuer, port, app


@pytest.fixture(scope="module")
def bankid_broker(redis, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bankid")
    issuer, port, app = start_broker(redis, tmp, simulator={"start_timeout": 30})
    with serve(app, port):
        yield BankIDBroker(issuer, app, tmp)
