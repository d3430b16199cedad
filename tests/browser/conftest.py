"""Real-browser tests: Playwright driving Debian's chromium (never a downloaded browser)."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile

import pytest

from tests.support.redis import free_port
from tests.support.server import serve

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
def demo(tmp_path_factory):
    """`broker demo` as a newcomer runs it: broker, simulator, demo RP, demo authorizations."""
    from broker.demo.command import build_demo

    port = free_port()
    app = build_demo(tmp_path_factory.mktemp("demo"), "localhost", port)
    with serve(app, port):
        yield f"http://localhost:{port}"


def run(coro):
    return asyncio.get_event_loop().run_until_complete(coro)
