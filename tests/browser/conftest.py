"""Real-browser tests: Playwright driving Debian's chromium (never a downloaded browser)."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
import time

import pytest

from tests.support.redis import free_port

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (bash .ci/setup does it)")
    return CHROMIUM


@pytest.fixture
async def browser(chromium_path):
    from playwright.async_api import async_playwright

    profile = tempfile.mkdtemp(prefix="broker-chromium-")
    async with async_playwright() as p:
        instance = await p.chromium.launch(executable_path=chromium_path, args=ARGS)
        try:
            yield instance
        finally:
            await instance.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def demo_stack(tmp_path_factory):
    """`broker demo` as a newcomer runs it: broker, simulator, demo RP, demo authorizations,
    and the SITHS host (TLS, test card) with its OCSP/CRL server - all in one event loop."""
    from broker.demo.command import build_demo

    port = free_port()
    stack = build_demo(tmp_path_factory.mktemp("demo"), "localhost", port,
                       siths_port=free_port())
    servers = stack.servers()
    thread = threading.Thread(target=lambda: asyncio.run(stack.serve(servers)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not all(s.started for s in servers):
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the demo's servers did not start")
        time.sleep(0.02)
    try:
        yield stack
    finally:
        servers[0].should_exit = True  # the others follow
        thread.join(10)
        stack.close()


@pytest.fixture(scope="module")
def demo(demo_stack) -> str:
    """The demo's main URL (http://localhost:<port>)."""
    return demo_stack.base_url


def run(coro):
    return asyncio.get_event_loop().run_until_complete(coro)

