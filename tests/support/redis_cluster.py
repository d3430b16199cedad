"""A real Redis Cluster for tests: 3 masters and 3 replicas of Debian's redis-server on
free loopback ports, joined with `redis-cli --cluster create`."""

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


@dataclass
class RedisClusterSet:
    ports: list[int]
    workdir: Path
    procs: dict[int, subprocess.Popen] = field(default_factory=dict)
    argv: dict[int, list[str]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports[:3])

    def cli(self, port: int, *args: str) -> str:
        return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True,
                              text=True, timeout=10).stdout

    def live(self) -> int:
        """A node that is up (asking a killed one would answer nothing)."""
        return next(p for p in self.ports if self.procs[p].poll() is None)

    def masters(self) -> list[int]:
        out = []
        for line in self.cli(self.live(), "cluster", "nodes").splitlines():
            parts = line.split()
            if len(parts) > 2 and "master" in parts[2] and "fail" not in parts[2]:
                out.append(int(parts[1].split("@")[0].rsplit(":", 1)[1]))
        return sorted(out)

    def replica_of(self, master: int) -> int:
        nodes = self.cli(self.live(), "cluster", "nodes").splitlines()
        master_id = next(line.split()[0] for line in nodes
                         if f":{master}@" in line.split()[1])
        return next(int(line.split()[1].split("@")[0].rsplit(":", 1)[1]) for line in nodes
                    if len(line.split()) > 3 and line.split()[3] == master_id)

    def state_ok(self, port: int | None = None) -> bool:
        ports = [port] if port else [p for p in self.ports if self.procs[p].poll() is None]
        return all("cluster_state:ok" in self.cli(p, "cluster", "info") for p in ports)

    def restart(self, port: int) -> None:
        self.procs[port] = subprocess.Popen(self.argv[port], stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL)


@contextmanager
def redis_cluster(node_timeout_ms: int = 2000, extra: tuple[str, ...] = ()) -> Iterator[RedisClusterSet]:
    for binary in ("redis-server", "redis-cli"):
        if shutil.which(binary) is None:
            raise RuntimeError(f"{binary} is not installed (bash .ci/setup installs it)")
    workdir = Path(tempfile.mkdtemp(prefix="broker-cluster-"))
    chosen: set[int] = set()
    while len(chosen) < 12:  # six nodes, each with a cluster bus port (port + 10000 may not exist)
        chosen.add(free_port())
    ports, buses = sorted(chosen)[:6], sorted(chosen)[6:]
    cluster = RedisClusterSet(ports, workdir)
    try:
        for port, bus in zip(ports, buses, strict=True):
            d = workdir / str(port)
            d.mkdir()
            cluster.argv[port] = [
                "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(d),
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-port", str(bus),
                "--cluster-node-timeout", str(node_timeout_ms), "--save", "",
                "--appendonly", "no", "--repl-diskless-sync-delay", "0", *extra]
            cluster.restart(port)
        for port in ports:
            wait_for_port(port)
        subprocess.run(["redis-cli", "--cluster", "create",
                        *(f"127.0.0.1:{p}" for p in ports), "--cluster-replicas", "1",
                        "--cluster-yes"], check=True, capture_output=True, timeout=60)
        deadline = time.monotonic() + 30
        while not cluster.state_ok():
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster did not reach state ok")
            time.sleep(0.2)
        # Every replica in sync before the first test writes.
        deadline = time.monotonic() + 30
        while any("master_link_status:up" not in cluster.cli(p, "info", "replication")
                  for p in ports if "role:slave" in cluster.cli(p, "info", "replication")):
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster's replicas did not sync")
            time.sleep(0.2)
        yield cluster
    finally:
        for proc in cluster.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in cluster.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)
