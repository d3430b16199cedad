"""Runs a real broker (uvicorn, real Redis) in a background thread for a test module."""

from __future__ import annotations

import asyncio
import threading
from contextlib import contextmanager

import uvicorn

from .redis import free_port, wait_for_port


@contextmanager
def serve(app, port: int | None = None):
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    wait_for_port(port)
    while not server.started:
        threading.Event().wait(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
