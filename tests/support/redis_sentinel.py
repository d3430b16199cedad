"""A real Redis Sentinel set-up for tests: one master, one replica and three sentinels
(quorum 2) of Debian's redis-server and redis-sentinel, on free loopback ports."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.redis import free_port, wait_for_port

# The Redis settings docs/operations.md recommends with Sentinel (persistence aside): a
# master refuses writes it cannot replicate (before running them, so a refused write can be
# retried), and a demoted master resyncs at once instead of after diskless sync's delay.
RECOMMENDED_REDIS = ("--min-replicas-to-write", "1", "--min-replicas-max-lag", "2",
                     "--repl-diskless-sync-delay", "0")


# -- Redis Sentinel -----------------------------------------------------------------------------
@dataclass
class SentinelSet:
    master_port: int
    replica_port: int
    sentinel_ports: list[int]
    procs: dict[str, subprocess.Popen]
    workdir: Path
    argv: dict[str, list[str]] = field(default_factory=dict)

    def restart(self, name: str) -> None:
        """Start a killed redis-server again, as an orchestrator restarts a pod (empty:
        no persistence here; the sentinels make it a replica of the new master)."""
        self.procs[name] = _redis(self.argv[name], self.workdir / f"{name}-again.log")

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/mymaster/0"

    def master_address(self) -> tuple[str, int] | None:
        for port in self.sentinel_ports:
            try:
                out = subprocess.run(
                    ["redis-cli", "-p", str(port), "sentinel", "get-master-addr-by-name", "mymaster"],
                    capture_output=True, text=True, timeout=2).stdout.split()
            except subprocess.TimeoutExpired:
                continue
            if len(out) == 2:
                return out[0], int(out[1])
        return None

    def role(self, port: int) -> str | None:
        try:
            out = subprocess.run(["redis-cli", "-p", str(port), "role"], capture_output=True,
                                 text=True, timeout=2).stdout.split()
        except subprocess.TimeoutExpired:
            return None
        return out[0] if out else None


def _redis(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)


@contextmanager
def sentinel_set(down_after_ms: int = 1000, failover_timeout_ms: int = 3000,
                 redis_args: tuple[str, ...] = ()) -> Iterator[SentinelSet]:
    """A master, one replica and three sentinels (quorum 2), all on free loopback ports;
    `redis_args` go to both redis-servers (e.g. the broker's recommended settings)."""
    for binary in ("redis-server", "redis-sentinel", "redis-cli"):
        if shutil.which(binary) is None:
            raise RuntimeError(f"{binary} is not installed (bash .ci/setup installs it)")
    workdir = Path(tempfile.mkdtemp(prefix="broker-sentinel-"))
    master, replica = free_port(), free_port()
    sentinels = [free_port() for _ in range(3)]
    procs: dict[str, subprocess.Popen] = {}
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", *redis_args]
    try:
        (workdir / "m").mkdir()
        (workdir / "r").mkdir()
        argv = {"master": ["redis-server", "--port", str(master), "--dir", str(workdir / "m"),
                           *common],
                "replica": ["redis-server", "--port", str(replica), "--dir", str(workdir / "r"),
                            "--replicaof", "127.0.0.1", str(master), *common]}
        procs["master"] = _redis(argv["master"], workdir / "master.log")
        wait_for_port(master)
        procs["replica"] = _redis(argv["replica"], workdir / "replica.log")
        wait_for_port(replica)
        for i, port in enumerate(sentinels):
            conf = workdir / f"sentinel-{i}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {workdir}\n"
                f"sentinel monitor mymaster 127.0.0.1 {master} 2\n"
                f"sentinel down-after-milliseconds mymaster {down_after_ms}\n"
                f"sentinel failover-timeout mymaster {failover_timeout_ms}\n"
                "sentinel parallel-syncs mymaster 1\n", encoding="utf-8")
            procs[f"sentinel{i}"] = _redis(["redis-sentinel", str(conf)], workdir / f"sentinel-{i}.log")
        for port in sentinels:
            wait_for_port(port)
        s = SentinelSet(master, replica, sentinels, procs, workdir, argv)
        _wait(lambda: s.role(replica) == "slave" and _link_up(replica), 15, "replica in sync")
        _wait(lambda: all(_sentinel_sees_replica(p) for p in sentinels), 15, "sentinels see replica")
        _wait(lambda: all(_sentinel_peers(p) == 2 for p in sentinels), 15, "sentinels see each other")
        yield s
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def _link_up(port: int) -> bool:
    out = subprocess.run(["redis-cli", "-p", str(port), "info", "replication"],
                         capture_output=True, text=True, timeout=2).stdout
    return "master_link_status:up" in out


def _sentinel_sees_replica(port: int) -> bool:
    out = subprocess.run(["redis-cli", "-p", str(port), "sentinel", "replicas", "mymaster"],
                         capture_output=True, text=True, timeout=2).stdout
    return "slave" in out and "s_down" not in out


def _sentinel_peers(port: int) -> int:
    out = subprocess.run(["redis-cli", "-p", str(port), "sentinel", "sentinels", "mymaster"],
                         capture_output=True, text=True, timeout=2).stdout
    return out.split().count("name")


def _wait(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, subprocess.TimeoutExpired):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")
