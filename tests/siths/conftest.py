"""Shared fixtures: one SITHS-like test PKI served over real HTTP for the whole session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from siths_support import Clock, free_socket, make_settings, serve

from broker.connectors.siths import SithsAuthenticator, TrustAnchors
from broker.connectors.siths.testpki import SithsTestPKI, create_pki_app, create_test_pki
from broker.store import MemoryStore


@pytest.fixture(scope="session")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def pki_server(clock: Clock) -> Iterator[SithsTestPKI]:
    sock = free_socket()
    port = sock.getsockname()[1]
    pki = create_test_pki(f"http://127.0.0.1:{port}", clock=clock)
    config = uvicorn.Config(create_pki_app(pki), log_level="warning", lifespan="off")
    with serve(config, sock):
        yield pki


@pytest.fixture
def pki(pki_server: SithsTestPKI, clock: Clock) -> Iterator[SithsTestPKI]:
    pki_server.reset()
    clock.offset = 0.0
    yield pki_server
    pki_server.reset()
    clock.offset = 0.0


@pytest.fixture(name="make_settings")
def make_settings_fixture():
    """The settings builder, for tests (tests/siths is not a package, so no imports)."""
    return make_settings


@pytest.fixture
def store(clock: Clock) -> MemoryStore:
    return MemoryStore(clock=clock)


@pytest.fixture
async def make_auth(pki: SithsTestPKI, store: MemoryStore, clock: Clock):
    """Build a SithsAuthenticator against the served PKI; closed after the test."""
    made: list[SithsAuthenticator] = []

    def build(**overrides: Any) -> SithsAuthenticator:
        auth = SithsAuthenticator(make_settings(**overrides), store,
                                  trust=TrustAnchors.from_pem(pki.bundle_pem()), clock=clock)
        made.append(auth)
        return auth

    yield build
    for auth in made:
        await auth.aclose()
