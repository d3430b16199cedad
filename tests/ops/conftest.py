"""Fixtures of the operations tests: a Redis of their own (stopped and started by the
tests), and broker replicas as real `broker serve` subprocesses."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.redis import free_port, wait_for_port


class OwnRedis:
    """A redis-server on a fixed port that a test may stop, freeze and start again."""

    def __init__(self) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed: bash .ci/setup")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="broker-ops-redis-")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    r = OwnRedis()
    r.start()
    try:
        yield r
    finally:
        if r.proc and r.proc.poll() is None:
            import signal

            r.proc.send_signal(signal.SIGCONT)
        r.stop()
        shutil.rmtree(r.dir, ignore_errors=True)


@pytest.fixture
def ops_dir(tmp_path: Path) -> Path:
    d = tmp_path / f"ops-{secrets.token_hex(3)}"
    d.mkdir()
    return d
