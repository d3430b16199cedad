"""A serving broker collects reference cycles less often, never not at all.

Requests free what they allocate by reference counting; Python's default of a young
collection every 700 allocations walked the objects of the requests in flight some 60
times a second under load (3-4 % of a BankID login's CPU, bench/README.md)."""

from __future__ import annotations

import gc
import weakref

from starlette.testclient import TestClient

from broker.app import GC_YOUNG, create_app
from broker.config import parse_settings
from broker.keys import KeyRing
from tests.support.fakes import FakeConnector, FakeSource, default_users


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_the_served_app_collects_cycles_after_gc_young_allocations(tmp_path):
    KeyRing(tmp_path / "keys", retention=600).generate_missing()
    settings = parse_settings({
        "issuer": "http://127.0.0.1:8080",
        "store": {"url": "memory://"},
        "keys": {"dir": str(tmp_path / "keys")},
        "audit": {"target": str(tmp_path / "audit.log")},
        "clients": [{"client_id": "rp", "client_name": "RP", "client_secret": "r" * 32,
                     "redirect_uris": ["http://127.0.0.1:9/cb"]}],
    }, str(tmp_path / "b.yaml"))
    before = gc.get_threshold()
    gc.set_threshold(700, *before[1:])
    try:
        app = create_app(settings, source=FakeSource(default_users(("rp",))),
                         connectors={"test": FakeConnector})
        with TestClient(app) as client:
            assert client.get("/healthz").status_code == 200
            assert gc.get_threshold()[0] == GC_YOUNG > 700
            a, b = _Node(), _Node()
            a.other, b.other = b, a
            gone = weakref.ref(a)
            del a, b
            assert gone() is not None  # a cycle: reference counting alone cannot free it
            keep = [[] for _ in range(2 * GC_YOUNG)]  # allocations, no explicit collect
            assert gone() is None, "a cycle outlived GC_YOUNG allocations"
            del keep
    finally:
        gc.set_threshold(*before)
