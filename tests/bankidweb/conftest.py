"""A broker with the BankID connector in simulator mode (simulator in-process), real Redis."""

from __future__ import annotations

import secrets

import pytest

from broker.app import bankid_connector, create_app
from broker.config import STANDARD_SCOPES, parse_settings
from broker.store import open_store
from tests.support.fakes import FakeSource
from tests.support.redis import free_port
from tests.support.rp import FakeRP
from tests.support.server import serve

REDIRECT = "https://rp.example/cb"


def bankid_users() -> list:
    """People of the simulator's test persons: Anna has one role, Erik two (the picker),
    Maria none."""
    from broker.authz import User
    from tests.support.fakes import assignment

    clients = ("lifecare",)
    return [
        User(id="u-anna", personal_identity_number="199001012385", given_name="Anna",
             family_name="Andersson", assignments=(assignment("a-anna", "sjukskoterska", "U1",
                                                              clients),)),
        User(id="u-erik", personal_identity_number="198502022398", given_name="Erik",
             family_name="Eriksson",
             assignments=(assignment("a-e-1", "handlaggare", "U1", clients),
                          assignment("a-e-2", "enhetschef", "U2", clients))),
        User(id="u-maria", personal_identity_number="197003032385", given_name="Maria",
             family_name="Johansson", assignments=()),
    ]


def bankid_config(issuer: str, redis: str, keys_dir, **bankid) -> dict:
    return {
        "issuer": issuer,
        "store": {"url": redis, "prefix": f"b{secrets.token_hex(4)}:"},
        "keys": {"dir": str(keys_dir), "generate": True},
        "audit": {"target": str(keys_dir.parent / "audit.log")},
        "clients": [{"client_id": "lifecare", "client_name": "Lifecare", "client_secret": "l" * 32,
                     "redirect_uris": [REDIRECT], "scopes": list(STANDARD_SCOPES),
                     "client_uri": "https://rp.example/",
                     "initiate_login_uri": "https://rp.example/login"}],
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


def start_broker(redis, tmp, clock=None, source=None, extra_connectors=None, **bankid):
    """A broker app; `clock` is shared by its BankID connector and embedded simulator;
    `extra_connectors` (name: factory) are offered beside BankID."""
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    settings = parse_settings(bankid_config(issuer, redis, tmp / "keys", **bankid), str(tmp / "b.yaml"))
    source = source or FakeSource(bankid_users())
    connectors = {"bankid": bankid_connector(clock=clock), **(extra_connectors or {})}
    app = create_app(settings, store=open_store(redis, settings.store.prefix), source=source,
                     connectors=connectors)
    return issuer, port, app


@pytest.fixture(scope="module")
def bankid_broker(redis, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bankid")
    # Every test here starts orders from 127.0.0.1: the per-address limit has its own tests.
    issuer, port, app = start_broker(redis, tmp, simulator={"start_timeout": 30},
                                     rate_limits={"starts_per_ip_per_minute": 10_000})
    with serve(app, port):
        yield BankIDBroker(issuer, app, tmp)
