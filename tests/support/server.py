"""Runs a real broker (uvicorn, real Redis) in a background thread for a test module."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from .redis import free_port, wait_for_port


@contextmanager
def running(config: uvicorn.Config, sockets: list[socket.socket] | None = None) -> Iterator[uvicorn.Server]:
    """Run uvicorn in a daemon thread until the block ends (on `sockets` when given)."""
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": sockets}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def serve(app, port: int | None = None) -> Iterator[str]:
    """A broker app on a free port, with its lifespan; yields its base URL."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="on")
    with running(config):
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
