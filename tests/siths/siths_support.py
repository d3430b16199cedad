"""Helpers shared by the SITHS tests (imported by name: tests/siths is not a package)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from broker.connectors.siths import SithsSettings
from tests.support.server import running


class Clock:
    """Real time plus an offset tests can move forward; shared by the PKI and the broker."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def serve(config: uvicorn.Config, sock: socket.socket) -> Iterator[uvicorn.Server]:
    """Run uvicorn in a thread on an already bound socket until the block ends."""
    try:
        with running(config, [sock]) as server:
            yield server
    finally:
        sock.close()


def make_settings(**overrides: Any) -> SithsSettings:
    data: dict[str, Any] = {
        "mode": "proxy",
        "proxy": {"trusted_proxies": ["127.0.0.1/32"]},
        "trust": {"ca_bundle": "unused.pem"},
        "revocation": {"ocsp_timeout": 2, "crl_timeout": 2},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return SithsSettings.model_validate(data)
