"""Prometheus metrics: what operators watch (see docs/operations.md, "Metrics").

One `Metrics` object per app, on its own `CollectorRegistry`, lives in the `Broker` context;
nothing here is global except what prometheus-client itself keeps for multiprocess mode.

`broker serve` always runs prometheus-client's multiprocess mode (`prepare_multiprocess`):
every uvicorn worker writes its samples to files in a private directory and the supervisor
process serves the sum of them on `metrics.port`. One code path for one worker or many, and
one scrape target per pod whatever `--workers` says. Built directly (tests, `broker demo`),
an app keeps its samples in memory and `Metrics.exposition()` renders them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
    values,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Seconds. Redis answers in well under a millisecond on a LAN; upstreams (BankID, RP
# key sets, the authorization source) in tens to hundreds of milliseconds.
STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
UPSTREAM_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The broker's metrics and the few verbs the code records them with."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.logins = Counter(
            "broker_logins", "Logins by method and outcome (success, sso, denied, failed, error).",
            ["method", "outcome"], registry=r)
        self.bankid_hints = Counter(
            "broker_bankid_hint_codes", "BankID collect hintCodes seen.", ["hint_code"], registry=r)
        self.bankid_errors = Counter(
            "broker_bankid_error_codes", "BankID RP API errorCodes received.", ["error_code"],
            registry=r)
        self.upstream_seconds = Histogram(
            "broker_upstream_request_seconds", "Latency of calls to upstream services.",
            ["upstream", "outcome"], buckets=UPSTREAM_BUCKETS, registry=r)
        self._store_children: dict[tuple[str, bool], Any] = {}
        self.store_seconds = Histogram(
            "broker_store_operation_seconds", "Latency of state store operations.",
            ["operation", "outcome"], buckets=STORE_BUCKETS, registry=r)
        self.tokens = Counter(
            "broker_tokens_issued", "Token responses issued, by grant type.", ["grant_type"],
            registry=r)
        self.errors = Counter(
            "broker_errors", "Errors by kind (store, unhandled, page_<key>, token_<error>).",
            ["kind"], registry=r)
        self.backchannel_deliveries = Counter(
            "broker_backchannel_deliveries",
            "Back-channel logout attempts by outcome (delivered, retried, given_up).",
            ["outcome"], registry=r)
        # max: every worker sees the same outbox in the store.
        self.backchannel_pending_gauge = Gauge(
            "broker_backchannel_pending", "Back-channel logout notifications not yet delivered.",
            registry=r, multiprocess_mode="max")
        self.authz_last_good = Gauge(
            "broker_authorization_last_good_load_timestamp_seconds",
            "When the data the authorization source serves was loaded (file source).",
            registry=r, multiprocess_mode="min")
        self.authz_degraded = Gauge(
            "broker_authorization_degraded",
            "1 while the authorization source serves older data than it should (a file "
            "that does not load: withdrawals in it have not taken effect).",
            registry=r, multiprocess_mode="max")
        # livesum: in multiprocess mode the pod's value is the sum over live workers.
        self.active_logins_gauge = Gauge(
            "broker_login_transactions_active",
            "Logins opened by a browser in this process and neither finished here nor expired.",
            registry=r, multiprocess_mode="livesum")
        self.active_logins = ActiveLogins(self.active_logins_gauge)

    # -- verbs ---------------------------------------------------------------------------
    def login(self, method: str | None, outcome: str) -> None:
        self.logins.labels(method or "none", outcome).inc()

    def record_bankid(self, *, hint_code: str | None = None, error_code: str | None = None) -> None:
        """For the BankID connector: one call per collect hintCode or RP API errorCode.

        Codes come from BankID's documented, short lists (unknown ones are folded into
        "other" so a misbehaving upstream cannot blow up label cardinality)."""
        if hint_code:
            self.bankid_hints.labels(_bounded(hint_code)).inc()
        if error_code:
            self.bankid_errors.labels(_bounded(error_code)).inc()

    def authorization_status(self, status: Any) -> None:
        """A `SourceStatus` of the authorization source, as it changes."""
        if status.last_good_load is not None:
            self.authz_last_good.set(status.last_good_load)
        self.authz_degraded.set(1 if status.degraded else 0)

    def backchannel(self, outcome: str) -> None:
        self.backchannel_deliveries.labels(outcome).inc()

    def backchannel_pending(self, count: int) -> None:
        self.backchannel_pending_gauge.set(count)

    def token_issued(self, grant_type: str | None) -> None:
        self.tokens.labels(grant_type if grant_type in GRANT_TYPES else "other").inc()

    def error(self, kind: str) -> None:
        self.errors.labels(kind).inc()

    @contextlib.contextmanager
    def upstream(self, name: str) -> Iterator[None]:
        """Time one call to an upstream: `with broker.metrics.upstream("bankid"): ...`."""
        start = time.perf_counter()
        outcome = "error"
        try:
            yield
            outcome = "ok"
        finally:
            self.upstream_seconds.labels(name, outcome).observe(time.perf_counter() - start)

    def observe_store(self, operation: str, seconds: float, ok: bool) -> None:
        # The labelled child is looked up once per (operation, outcome): a login makes about
        # twenty store calls, and `labels()` takes a lock and builds a key each time.
        child = self._store_children.get((operation, ok))
        if child is None:
            child = self._store_children[(operation, ok)] = self.store_seconds.labels(
                operation, "ok" if ok else "error")
        child.observe(seconds)
        if not ok:
            self.error("store")

    def transport(self, name: str,
                  inner: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncBaseTransport:
        """An httpx transport that times every request as upstream `name`."""
        return TimedTransport(self, name, inner or httpx.AsyncHTTPTransport())

    # -- exposition ----------------------------------------------------------------------
    def exposition(self) -> bytes:
        """The text format of this app's registry (or of all workers in multiprocess mode)."""
        return generate_latest(scrape_registry() if multiprocess_dir() else self.registry)

    def close(self) -> None:
        """A worker that stops takes its live gauges out of the pod's sum."""
        path = multiprocess_dir()
        if path:
            multiprocess.mark_process_dead(os.getpid(), path)


GRANT_TYPES = frozenset({"authorization_code", "refresh_token", "client_credentials"})
_CODE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _bounded(code: str) -> str:
    return code if len(code) <= 40 and set(code) <= _CODE_CHARS else "other"


class ActiveLogins:
    """Logins in progress, as seen by this process.

    A login is counted from the moment a browser opens it until it ends here, or until its
    transaction would have expired in the store (abandoned logins never send an "end").
    A login finished by another replica stays counted here until its expiry, so the sum
    over replicas is an upper bound that converges within the transaction TTL; it never
    drifts upwards over time, and never goes negative.
    """

    def __init__(self, gauge: Gauge, clock: Any = time.time) -> None:
        self._gauge = gauge
        self._clock = clock
        self._open: dict[str, float] = {}
        self._lock = threading.Lock()

    def started(self, txn_id: str, expires: float) -> None:
        with self._lock:
            self._open[txn_id] = expires
            self._publish()

    def ended(self, txn_id: str) -> None:
        with self._lock:
            self._open.pop(txn_id, None)
            self._publish()

    def count(self) -> int:
        with self._lock:
            self._publish()
            return len(self._open)

    def _publish(self) -> None:
        now = self._clock()
        for txn_id in [t for t, exp in self._open.items() if exp <= now]:
            del self._open[txn_id]
        self._gauge.set(len(self._open))


class TimedTransport(httpx.AsyncBaseTransport):
    """Wraps a transport; every request is observed, failures (no response) as "error"."""

    def __init__(self, metrics: Metrics, name: str, inner: httpx.AsyncBaseTransport) -> None:
        self._metrics = metrics
        self._name = name
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        start = time.perf_counter()
        try:
            response = await self._inner.handle_async_request(request)
        except Exception:
            self._observe(start, "error")
            raise
        self._observe(start, "ok" if response.status_code < 500 else "error")
        return response

    def _observe(self, start: float, outcome: str) -> None:
        self._metrics.upstream_seconds.labels(self._name, outcome).observe(
            time.perf_counter() - start)

    async def aclose(self) -> None:
        await self._inner.aclose()


class TimedSource:
    """An authorization source whose lookups are observed as upstream "authorization".

    Everything else (ping, aclose, a source's own helpers) passes straight through.
    """

    def __init__(self, inner: Any, metrics: Metrics) -> None:
        self.inner = inner
        self._metrics = metrics

    async def find_user(self, identity: Any) -> Any:
        with self._metrics.upstream("authorization"):
            return await self.inner.find_user(identity)

    async def get_user(self, user_id: str) -> Any:
        with self._metrics.upstream("authorization"):
            return await self.inner.get_user(user_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


# -- multiprocess mode (`broker serve`) ------------------------------------------------------
def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def prepare_multiprocess(base_dirs: tuple[str, ...] = ("/var/lib/broker", "/tmp")) -> tuple[str, bool]:  # noqa: S108
    """Point prometheus-client at an empty directory shared with the workers.

    Must run before any metric is created in this process; workers inherit the environment.
    An operator's PROMETHEUS_MULTIPROC_DIR is honoured (and emptied: samples of an earlier run
    would be added to this one's); otherwise a private directory is made under the first
    writable base. Returns the directory and whether we created it (then we remove it).
    """
    given = multiprocess_dir()
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        created = False
    else:
        base = next((b for b in base_dirs if os.path.isdir(b) and os.access(b, os.W_OK)), None)
        path = Path(tempfile.mkdtemp(prefix="broker-metrics-", dir=base))
        os.environ[MULTIPROC_ENV] = str(path)
        created = True
    # prometheus-client picks its value class when first imported: pick again now.
    values.ValueClass = values.get_value_class()
    return str(path), created


@contextlib.contextmanager
def multiprocess_mode() -> Iterator[str]:
    """Multiprocess mode for the block (the whole of `broker serve`); cleans up after."""
    path, created = prepare_multiprocess()
    try:
        yield path
    finally:
        if created:
            shutil.rmtree(path, ignore_errors=True)
            os.environ.pop(MULTIPROC_ENV, None)


def scrape_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


@contextlib.contextmanager
def metrics_server(host: str, port: int) -> Iterator[None]:
    """Serve GET /metrics (the sum over every worker) on host:port while in the block.

    Runs in the supervisor process, so one port serves the pod whatever `--workers` says.
    """
    server, thread = start_http_server(port, addr=host, registry=scrape_registry())
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
