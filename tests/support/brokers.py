"""Brokers built for one test each (grants, faults): a real Redis (directly or through a fault-injecting
proxy), a clock the test moves instead of sleeping, and store wrappers that hold
concurrent requests at the atomic step so that races happen every time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from joserfc.jwk import ECKey

from broker.app import create_app
from broker.config import parse_settings
from broker.store import Store, open_store
from tests.conftest import Running, base_config
from tests.support.fakes import FakeConnector, FakeSource, default_users
from tests.support.redis import free_port
from tests.support.server import serve

CLIENTS = ("rp-basic", "rp-post", "rp-jwt", "rp-flat")


class FakeClock:
    """Wall-clock time that a test moves on (never backwards)."""

    def __init__(self) -> None:
        # Whole seconds, as the broker counts them: advancing by n moves every "now" by n.
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Gate:
    """A store wrapper that holds callers of one operation until `parties` of them have
    arrived, then lets them all go at once: concurrent requests really collide."""

    def __init__(self, inner: Store, operation: str, parties: int) -> None:
        self.inner = inner
        self.operation = operation
        self.parties = parties
        self._arrived = 0
        self._open: asyncio.Event | None = None

    async def _gate(self) -> None:
        if self._open is None:
            self._open = asyncio.Event()
        self._arrived += 1
        if self._arrived >= self.parties:
            self._open.set()
        await asyncio.wait_for(self._open.wait(), 10)

    def __getattr__(self, name: str):
        target = getattr(self.inner, name)
        if name != self.operation:
            return target

        async def gated(*args, **kwargs):
            await self._gate()
            return await target(*args, **kwargs)

        return gated


@contextmanager
def running_broker(redis_url: str, tmp: Path, *, clock=None, source=None, wrap=None,
                   tokens: dict | None = None, store_timeout: float | None = None,
                   extra_clients: list[dict] | None = None,
                   port: int | None = None, backchannel: dict | None = None,
                   store: dict | None = None) -> Iterator[Running]:
    port = port or free_port()
    issuer = f"http://127.0.0.1:{port}"
    jwt_key = ECKey.generate_key("P-256", auto_kid=True)
    config = base_config(issuer, tmp / "keys", redis_url, jwt_key)
    config["tokens"] = {**config["tokens"], **(tokens or {})}
    config["clients"] += extra_clients or []
    if store_timeout is not None:
        config["store"]["timeout"] = store_timeout
    config["store"].update(store or {})
    if backchannel:
        config["backchannel"] = backchannel
    settings = parse_settings(config, str(tmp / "broker.yaml"))
    source = source or FakeSource(default_users(CLIENTS + tuple(
        c["client_id"] for c in extra_clients or [])))
    box: list[FakeConnector] = []

    def factory(ctx):
        box.append(FakeConnector(ctx))
        return box[-1]

    store = open_store(redis_url, settings.store.prefix, settings.store.timeout,
                       replicas=settings.store.replicas,
                       replica_timeout=settings.store.replica_timeout)
    if wrap is not None:
        store = wrap(store)
    app = create_app(settings, store=store, source=source, connectors={"test": factory},
                     clock=clock or time.time)
    with serve(app, port) as url:
        assert url == issuer
        yield Running(issuer, app, source, box, jwt_key)
