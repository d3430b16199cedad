"""Benchmark: the broker against a bare Starlette endpoint and panva's oidc-provider.

    python bench/run.py --seconds 10          # everything, about 4-6 minutes
    python bench/run.py --profile             # the broker's scenarios under a profiler
    python bench/run.py --store cluster       # the broker's state on a 3+3 Redis Cluster

Every server runs alone (one process, one at a time) on 127.0.0.1 next to one Redis; one
aiohttp driver process (this one) drives it at a fixed concurrency. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from bench.app_factory import CLIENT_SECRET, CLIENTS, REDIRECT_URI  # noqa: E402
from bench.driver import (  # noqa: E402
    Result,
    Target,
    ceiling_request,
    login,
    redeem,
    refresh,
    run_load,
    session,
    userinfo,
)
from tests.support.redis import free_port, redis_server, wait_for_port  # noqa: E402
from tests.support.redis_cluster import redis_cluster  # noqa: E402

BENCH = ROOT / "bench"
PEER = BENCH / "peer"
RESULTS = BENCH / "results"
TICKS = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine_busy_seconds() -> float:
    """CPU seconds all processes on the machine spent busy (all cores), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / TICKS


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and of every live process below it (uvicorn's
    `--workers N` runs the workers as children of a supervisor), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        fields = _stat(current)
        if fields is None:
            if current == pid:
                return math.nan
            continue
        total += (int(fields[11]) + int(fields[12])) / TICKS
        todo += children.get(current, [])
    return total


@dataclass
class RedisNodes:
    """The Redis processes a scenario's server keeps its state in: one, or a cluster's six.
    Their CPU and the commands they ran are measured per scenario."""

    url: str
    nodes: list[tuple[int, int]]  # (pid, port)

    def commands(self) -> int:
        total = 0
        for _, port in self.nodes:
            out = subprocess.run(["redis-cli", "-p", str(port), "info", "stats"],
                                 capture_output=True, text=True, timeout=10).stdout
            total += next(int(line.split(":")[1]) for line in out.splitlines()
                          if line.startswith("total_commands_processed:"))
        return total

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid, _ in self.nodes)


@dataclass
class Server:
    name: str
    url: str
    proc: subprocess.Popen

    @property
    def pid(self) -> int:
        return self.proc.pid


@contextlib.contextmanager
def serve(name: str, argv: list[str], port: int, env: dict[str, str] | None = None,
          cwd: Path = ROOT) -> Iterator[Server]:
    # The servers' own output goes to stderr with the progress log; stdout is the report.
    proc = subprocess.Popen(argv, cwd=cwd, env={**os.environ, **(env or {})}, stdout=sys.stderr)
    try:
        wait_for_port(port, timeout=30)
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}")
        yield Server(name, f"http://127.0.0.1:{port}", proc)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def uvicorn_argv(factory: str, port: int) -> list[str]:
    """One uvicorn worker; uvloop and httptools when installed (they are with uvicorn[standard])."""
    argv = [sys.executable, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning", "--no-access-log",
            "--no-proxy-headers"]  # as `broker serve`: the broker reads forwarded headers itself
    with contextlib.suppress(ImportError):
        import uvloop  # noqa: F401

        argv += ["--loop", "uvloop"]
    with contextlib.suppress(ImportError):
        import httptools  # noqa: F401

        argv += ["--http", "httptools"]
    return argv


class Bench:
    def __init__(self, args: argparse.Namespace, store: RedisNodes, peer_store: RedisNodes) -> None:
        self.args = args
        self.store = store  # the broker's
        self.peer_store = peer_store  # oidc-provider's (ioredis speaks to one Redis)
        self.results: list[Result] = []

    async def measure(self, name: str, op: Callable[[], Awaitable[float]],
                      server: Server) -> Result:
        """One measured window, with the CPU each process used in it and the Redis
        commands it caused."""
        result, used, commands = await self.window(op, server, self.redis_of(name),
                                                   self.args.seconds)
        result.name = name
        if result.ops:
            result.redis_commands = commands / result.ops
        result.cpu = {k: round(100 * v / result.seconds) for k, v in used.items()}
        self.results.append(result)
        log(f"{name}: {result.rate:.0f} ops/s, p50 {result.percentile(0.5) * 1e3:.1f} ms, "
            f"p99 {result.percentile(0.99) * 1e3:.1f} ms, errors {result.errors} "
            f"{result.first_error or ''} {result.note} cpu {result.cpu}")
        return result

    def redis_of(self, scenario: str) -> RedisNodes:
        """The peer's Redis for its scenarios ("peer ...", "(alt) peer ..."), else the
        broker's."""
        return self.peer_store if "peer" in scenario.split()[:2] else self.store

    async def warm(self, op: Callable[[], Awaitable[float]]) -> Result:
        return await run_load("warm-up", op, self.args.concurrency, self.args.warmup)

    # -- scenarios ----------------------------------------------------------------------
    async def fixed_endpoint(self, name: str, server: Server) -> None:
        """The redemption's request shape against an endpoint that does (almost) nothing."""
        body = urlencode({"grant_type": "authorization_code", "code": "x" * 43,
                          "redirect_uri": REDIRECT_URI, "code_verifier": "v" * 64})
        basic = base64.b64encode(f"{CLIENTS['RS256']}:{CLIENT_SECRET}".encode()).decode()
        headers = {"Authorization": f"Basic {basic}",
                   "Content-Type": "application/x-www-form-urlencoded"}
        url = server.url + "/token"
        async with session(self.args.concurrency) as http:

            def op() -> Awaitable[float]:
                return ceiling_request(http, url, body, headers)

            await self.warm(op)
            await self.measure(name, op, server)

    async def oidc(self, target: Target, server: Server) -> None:
        args = self.args
        async with session(args.concurrency) as http:
            log(f"{target.label}: checking one login and one redemption per algorithm")
            for alg in target.clients:
                await login(http, target, alg)
                await redeem(http, target, alg, check=True)

            def login_op() -> Awaitable[float]:
                return login(http, target)

            await self.warm(login_op)
            await self.measure(f"{target.label} login-to-code", login_op, server)
            for alg in target.clients:
                await self.redemption(http, target, alg, server)
            for alg in target.clients:
                await self.refreshing(http, target, alg, server)

    async def refreshing(self, http: aiohttp.ClientSession, target: Target, alg: str,
                         server: Server) -> None:
        """Refresh-token rotation: twice as many chains as workers, each refreshed in turn."""
        chains = 2 * self.args.concurrency
        for _ in range(chains):
            await login(http, target, alg)
            await redeem(http, target, alg, keep_chain=True)

        def op() -> Awaitable[float]:
            return refresh(http, target, alg)

        await self.warm(op)
        await self.measure(f"{target.label} refresh {alg}", op, server)
        target.chains[alg].clear()
        if alg == next(iter(target.clients)):
            # UserInfo with the access tokens of the last generation of each chain: the
            # lookup of a live access token, its family and session, and the claims.
            target.bearers[alg] = target.bearers[alg][-chains:]

            def read() -> Awaitable[float]:
                return userinfo(http, target, alg)

            await self.warm(read)
            await self.measure(f"{target.label} userinfo", read, server)
        target.bearers[alg].clear()

    async def mint(self, http: aiohttp.ClientSession, target: Target, alg: str, needed: int) -> None:
        """Log in until `needed` codes wait for `alg` (or the minting budget is spent)."""
        pool = target.pools[alg]
        if len(pool) >= needed:
            return
        began = time.perf_counter()
        deadline = began + self.args.mint_budget
        have = len(pool)

        async def worker() -> None:
            while len(pool) < needed and time.perf_counter() < deadline:
                await login(http, target, alg)

        await asyncio.gather(*(worker() for _ in range(self.args.concurrency)))
        log(f"{target.label}: minted {len(pool) - have} {alg} codes in "
            f"{time.perf_counter() - began:.1f} s ({len(pool)} ready)")

    async def redemption(self, http: aiohttp.ClientSession, target: Target, alg: str,
                         server: Server) -> None:
        """Warm up on the codes at hand, mint what the measured window will need, measure."""
        concurrency = self.args.concurrency

        def op() -> Awaitable[float]:
            return redeem(http, target, alg)

        await self.mint(http, target, alg, concurrency * 25)
        warm = await self.warm(op)
        # The warm-up rate underestimates a server that is still warming (the peer's JIT).
        needed = int(warm.rate * self.args.seconds * 1.6) + 4 * concurrency
        await self.mint(http, target, alg, needed)
        await self.measure(f"{target.label} redemption {alg}", op, server)
        target.pools[alg].clear()  # what is left would expire unused; keep Redis small

    # -- servers ------------------------------------------------------------------------
    async def run_all(self, workdir: Path) -> None:
        port = free_port()
        log("generator ceiling: raw asyncio server with a fixed answer")
        with serve("ceiling", [sys.executable, str(BENCH / "ceiling_server.py"), str(port)],
                   port) as server:
            await self.fixed_endpoint("generator ceiling", server)

        port = free_port()
        log("bare Starlette endpoint on one uvicorn worker")
        with serve("bare", uvicorn_argv("bench.app_factory:bare_app", port), port) as server:
            await self.fixed_endpoint("bare Starlette", server)

        await self.run_broker(workdir)
        if not self.args.no_bankid:
            await self.run_bankid(workdir)
        if self.args.workers > 1:
            await self.run_broker(workdir, workers=self.args.workers)
        if not self.args.no_peer:
            await self.run_peer()
            if not self.args.no_bankid:
                await self.run_interleaved(workdir)

    def broker_env(self, port: int, workdir: Path) -> dict[str, str]:
        return {"BENCH_ISSUER": f"http://127.0.0.1:{port}", "BENCH_REDIS": self.store.url,
                "BENCH_WORKDIR": str(workdir)}

    def broker_target(self, url: str) -> Target:
        return Target("broker", url, "/authorize", "/token", dict(CLIENTS), CLIENT_SECRET,
                      REDIRECT_URI)

    async def run_broker(self, workdir: Path, workers: int = 1) -> None:
        port = free_port()
        log(f"broker on {workers} uvicorn worker(s)")
        argv = uvicorn_argv("bench.app_factory:broker_app", port) + (
            ["--workers", str(workers)] if workers > 1 else [])
        with serve("broker", argv, port, self.broker_env(port, workdir)) as server:
            target = self.broker_target(server.url)
            if workers == 1:
                await self.oidc(target, server)
                return
            # The scaling factor: the same login and redemption on `workers` processes.
            target.label = f"broker x{workers}"
            async with session(self.args.concurrency) as http:

                def login_op() -> Awaitable[float]:
                    return login(http, target)

                await self.warm(login_op)
                await self.measure(f"{target.label} login-to-code", login_op, server)
                await self.redemption(http, target, "RS256", server)

    async def run_bankid(self, workdir: Path) -> None:
        """The full BankID login through the embedded simulator (approving at once):
        authorize, the login, the order at BankID's API, collect, finish, the code; once
        for a person with one role, once with the role picker (two roles)."""
        from bench.app_factory import ANNA, ERIK

        for label, person, pick in (("broker bankid login", ANNA, None),
                                    ("broker bankid login (picker)", ERIK, "e-2")):
            log(f"{label}: broker with BankID on one uvicorn worker")
            with self.broker_server("bench.app_factory:bankid_app", workdir,
                                    {"BENCH_BANKID_PERSON": person}) as (server, target):
                async with session(self.args.concurrency) as http:
                    await login(http, target, pick=pick)  # one checked login first

                    def op(target: Target = target, pick: str | None = pick) -> Awaitable[float]:
                        return login(http, target, pick=pick)

                    await self.warm(op)
                    await self.measure(label, op, server)
                target.pools = {alg: type(p)() for alg, p in target.pools.items()}

    async def run_peer(self) -> None:
        node = shutil.which("node")
        if node is None:
            log("peer skipped: node is not installed")
            return
        log("oidc-provider on one Node process")
        with self.peer_server(node) as (server, target):
            await self.oidc(target, server)

    async def run_interleaved(self, workdir: Path) -> None:
        """The pairs the targets are judged on, each in alternating windows with both
        servers up (the one not under load idles): the BankID login against the peer's
        login-to-code, then code redemption per algorithm. The scenarios above run
        minutes apart, and this machine's speed drifts by a fifth or more between them,
        enough to move a ratio across its target; here both see the same machine."""
        node = shutil.which("node")
        if node is None:
            return
        from bench.app_factory import ANNA

        log(f"alternating windows: {INTERLEAVED_ROUNDS} rounds per pair")
        bankid_env = {"BENCH_BANKID_PERSON": ANNA}
        with self.peer_server(node) as (peer, peer_target), \
                self.broker_server("bench.app_factory:bankid_app", workdir, bankid_env) as (
                    bankid, bankid_target):
            async with session(self.args.concurrency) as http:
                pairs = [(f"{INTERLEAVED} broker bankid login", bankid, bankid_target),
                         (f"{INTERLEAVED} peer login-to-code", peer, peer_target)]
                for *_, target in pairs:
                    await login(http, target)  # one checked login each
                    await self.warm(lambda t=target: login(http, t))
                await self.alternate([(name, lambda t=target: login(http, t), server)
                                      for name, server, target in pairs])
        with self.peer_server(node) as (peer, peer_target), \
                self.broker_server("bench.app_factory:broker_app", workdir) as (
                    broker, broker_target):
            async with session(self.args.concurrency) as http:
                for alg in CLIENTS:
                    pairs = [(f"{INTERLEAVED} broker redemption {alg}", broker, broker_target),
                             (f"{INTERLEAVED} peer redemption {alg}", peer, peer_target)]
                    for *_, target in pairs:
                        await self.mint(http, target, alg, self.args.concurrency * 25)
                        warm = await self.warm(lambda t=target, a=alg: redeem(http, t, a))
                        await self.mint(http, target, alg, int(warm.rate * self.args.seconds
                                                               * 1.6) + 4 * self.args.concurrency)
                    await self.alternate([(name, lambda t=target, a=alg: redeem(http, t, a), server)
                                          for name, server, target in pairs])
                    for *_, target in pairs:
                        target.pools[alg].clear()

    @contextlib.contextmanager
    def peer_server(self, node: str) -> Iterator[tuple[Server, Target]]:
        port = free_port()
        env = {"PORT": str(port), "REDIS_URL": self.peer_store.url.rsplit("/", 1)[0] + "/1",
               "REDIRECT_URI": REDIRECT_URI, "CLIENT_SECRET": CLIENT_SECRET,
               "NODE_ENV": "production"}
        with serve("peer", [node, "server.mjs"], port, env, cwd=PEER) as server:
            yield server, Target("peer", server.url, "/auth", "/token", dict(CLIENTS),
                                 CLIENT_SECRET, REDIRECT_URI, userinfo_path="/me")

    @contextlib.contextmanager
    def broker_server(self, factory: str, workdir: Path, env: dict[str, str] | None = None
                      ) -> Iterator[tuple[Server, Target]]:
        port = free_port()
        with serve("broker", uvicorn_argv(factory, port), port,
                   {**self.broker_env(port, workdir), **(env or {})}) as server:
            yield server, self.broker_target(server.url)

    async def alternate(self, pairs: list[tuple[str, Callable[[], Awaitable[float]], Server]]
                        ) -> None:
        """INTERLEAVED_ROUNDS windows of --seconds / rounds for each (name, op, server), in
        turn; one result per name, over all its windows."""
        totals = [Result(name) for name, *_ in pairs]
        used = [dict.fromkeys(("server", "redis", "driver", "other"), 0.0) for _ in pairs]
        commands = [0] * len(pairs)
        for _ in range(INTERLEAVED_ROUNDS):
            for i, (name, op, server) in enumerate(pairs):
                result, cpu, cmds = await self.window(op, server, self.redis_of(name),
                                                      self.args.seconds / INTERLEAVED_ROUNDS)
                total = totals[i]
                total.latencies += result.latencies
                total.errors += result.errors
                total.first_error = total.first_error or result.first_error
                total.note = total.note or result.note
                total.seconds += result.seconds
                commands[i] += cmds
                for k, v in cpu.items():
                    used[i][k] += v
        for total, cpu, cmds in zip(totals, used, commands, strict=True):
            total.cpu = {k: round(100 * v / total.seconds) for k, v in cpu.items()}
            total.redis_commands = cmds / total.ops if total.ops else math.nan
            self.results.append(total)
            log(f"{total.name}: {total.rate:.0f} ops/s, errors {total.errors} "
                f"{total.first_error or ''} {total.note} cpu {total.cpu}")

    async def window(self, op: Callable[[], Awaitable[float]], server: Server,
                     redis: RedisNodes, seconds: float) -> tuple[Result, dict[str, float], int]:
        """Load for `seconds`: the result (its seconds run to the end of the last
        operation, so the operations still in flight at the deadline count with their
        time), the CPU seconds each process used (`other`: whatever else ran on the
        machine meanwhile; other jobs skew the numbers) and the Redis commands caused,
        less the first INFO of this count, per node (an INFO counts only in the next)."""
        commands = redis.commands()
        before = {"server": cpu_seconds(server.pid), "redis": redis.cpu()}
        busy, driver_before, wall = machine_busy_seconds(), time.process_time(), time.perf_counter()
        result = await run_load("window", op, self.args.concurrency, seconds)
        if not result.note:  # codes that ran out end the window early (run_load)
            result.seconds = time.perf_counter() - wall
        used = {"server": cpu_seconds(server.pid) - before["server"],
                "redis": redis.cpu() - before["redis"],
                "driver": time.process_time() - driver_before}
        used["other"] = max(0.0, machine_busy_seconds() - busy - sum(used.values()))
        return result, used, redis.commands() - commands - len(redis.nodes)

    async def profile(self, workdir: Path) -> None:
        """Login-to-code, code redemption and refresh per algorithm, and the full BankID
        login through the simulator, under a profiler in the broker."""
        port = free_port()
        env = {**self.broker_env(port, workdir), "BENCH_PROFILE": "1",
               "BENCH_PROFILER": self.args.profiler}
        RESULTS.mkdir(exist_ok=True)
        with serve("broker", uvicorn_argv("bench.app_factory:broker_app", port), port,
                   env) as server:
            target = self.broker_target(server.url)
            async with session(self.args.concurrency) as http:

                def login_op() -> Awaitable[float]:
                    return login(http, target)

                await self.warm(login_op)
                await self.profiled(http, server, "login-to-code", login_op)
                for alg in target.clients:

                    def op(alg: str = alg) -> Awaitable[float]:
                        return redeem(http, target, alg)

                    await self.mint(http, target, alg, self.args.concurrency * 25)
                    warm = await self.warm(op)
                    await self.mint(http, target, alg,
                                    int(warm.rate * self.args.seconds * 1.3) + 64)
                    await self.profiled(http, server, f"redemption-{alg}", op)
                for alg in target.clients:
                    for _ in range(2 * self.args.concurrency):
                        await login(http, target, alg)
                        await redeem(http, target, alg, keep_chain=True)

                    def rotate(alg: str = alg) -> Awaitable[float]:
                        return refresh(http, target, alg)

                    await self.warm(rotate)
                    await self.profiled(http, server, f"refresh-{alg}", rotate)
        port = free_port()
        env = {**self.broker_env(port, workdir), "BENCH_PROFILE": "1",
               "BENCH_PROFILER": self.args.profiler, "BENCH_BANKID_PERSON": "199001012385"}
        with serve("bankid", uvicorn_argv("bench.app_factory:bankid_app", port), port,
                   env) as server:
            target = self.broker_target(server.url)
            async with session(self.args.concurrency) as http:

                def bankid_op() -> Awaitable[float]:
                    return login(http, target)

                await self.warm(bankid_op)
                await self.profiled(http, server, "bankid-login", bankid_op)

    async def profiled(self, http: aiohttp.ClientSession, server: Server, name: str,
                       op: Callable[[], Awaitable[float]]) -> None:
        async with http.post(server.url + "/_bench/profile/start") as resp:
            kind = await resp.text()
        await self.measure(f"broker {name} (profiled)", op, server)
        stop = "/_bench/profile/stop" + ("?all=1" if self.args.profile_all else "")
        async with http.post(server.url + stop) as resp:
            report = await resp.text()
        path = RESULTS / f"profile-{name}.txt"
        path.write_text(report)
        log(f"{kind} report for {name}: {path}")
        print(report[:self.args.profile_chars])


# -- report ------------------------------------------------------------------------------
ROWS = ["generator ceiling", "bare Starlette", "broker login-to-code", "broker redemption RS256",
        "broker redemption ES256", "broker refresh RS256", "broker refresh ES256",
        "peer login-to-code", "peer redemption RS256", "peer redemption ES256",
        "peer refresh RS256", "peer refresh ES256", "broker userinfo", "peer userinfo",
        "broker bankid login", "broker bankid login (picker)"]
INTERLEAVED = "(alt)"  # the scenarios measured in alternating windows (run_interleaved)
INTERLEAVED_ROUNDS = 5


def note(result: Result) -> str:
    notes = [result.note] if result.note else []
    if result.cpu.get("other", 0) >= 25:
        notes.append("CONTENDED (other jobs ran; repeat)")
    if result.first_error:
        notes.append(result.first_error[:60])
    return "; ".join(notes)


def table(results: list[Result]) -> str:
    by_name = {r.name: r for r in results}
    lines = [f"{'scenario':<26} {'ops/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} "
             f"{'srv ms/op':>9} {'cmd/op':>6}  {'cpu% srv/redis/drv/other':<25} note",
             "-" * 113]
    for name in ROWS + [r.name for r in results if r.name not in ROWS]:
        r = by_name.get(name)
        if r is None:
            lines.append(f"{name:<26} {'-':>8}")
            continue
        cpu = "/".join(str(r.cpu.get(k, "-")) for k in ("server", "redis", "driver", "other"))
        # Server CPU per operation: what the server would need on a core of its own.
        cost = r.cpu.get("server", math.nan) * 10 / r.rate if r.rate else math.nan
        lines.append(f"{name:<26} {r.rate:>8.0f} {r.percentile(0.5) * 1e3:>8.2f} "
                     f"{r.percentile(0.99) * 1e3:>8.2f} {r.errors:>6} {cost:>9.3f} {r.redis_commands:>6.1f}  "
                     f"{cpu:<25} "
                     f"{note(r)}")
    return "\n".join(lines)


def ratios(results: list[Result]) -> str:
    """Throughput ratios (the targets), and the same ratio from server CPU per operation,
    which holds even when other jobs shared the machine."""
    rate = {r.name: r.rate for r in results}
    _workers = next((r.name.split()[1][1:] for r in results if r.name.startswith("broker x")), "N")
    cost = {r.name: r.cpu.get("server", 0) / r.rate for r in results if r.rate}

    def ratio(a: str, b: str) -> tuple[float | None, float | None]:
        by_rate = rate[a] / rate[b] if rate.get(a) and rate.get(b) else None
        by_cost = cost[b] / cost[a] if cost.get(a) and cost.get(b) else None
        return by_rate, by_cost

    rows = [
        ("login-to-code, broker/peer", ratio("broker login-to-code", "peer login-to-code"), None),
        ("bankid login, broker/peer login-to-code", ratio("broker bankid login",
                                                          "peer login-to-code"), None),
        ("bankid/peer login-to-code, alternating", ratio(f"{INTERLEAVED} broker bankid login",
                                                        f"{INTERLEAVED} peer login-to-code"), 0.6),
        ("bankid login (picker), broker/peer", ratio("broker bankid login (picker)",
                                                     "peer login-to-code"), None),
        ("redemption RS256, broker/peer", ratio("broker redemption RS256", "peer redemption RS256"),
         None),
        ("redemption RS256, alternating", ratio(f"{INTERLEAVED} broker redemption RS256",
                                                f"{INTERLEAVED} peer redemption RS256"), 1.2),
        ("redemption ES256, broker/peer", ratio("broker redemption ES256", "peer redemption ES256"),
         None),
        ("redemption ES256, alternating", ratio(f"{INTERLEAVED} broker redemption ES256",
                                                f"{INTERLEAVED} peer redemption ES256"), 1.2),
        ("refresh RS256, broker/peer", ratio("broker refresh RS256", "peer refresh RS256"), 1.0),
        ("refresh ES256, broker/peer", ratio("broker refresh ES256", "peer refresh ES256"), 1.0),
        ("userinfo, broker/peer", ratio("broker userinfo", "peer userinfo"), None),
        ("refresh/redemption RS256, broker", ratio("broker refresh RS256",
                                                   "broker redemption RS256"), 0.8),
        ("refresh/redemption ES256, broker", ratio("broker refresh ES256",
                                                   "broker redemption ES256"), 0.8),
        ("login-to-code, broker xN/x1", ratio(f"broker x{_workers} login-to-code",
                                              "broker login-to-code"), None),
        ("redemption RS256, broker xN/x1", ratio(f"broker x{_workers} redemption RS256",
                                                 "broker redemption RS256"), None),
        ("redemption RS256, broker/bare", ratio("broker redemption RS256", "bare Starlette"), 0.5),
        ("redemption ES256, broker/bare", ratio("broker redemption ES256", "bare Starlette"), 0.5),
        ("bare Starlette / generator ceiling", ratio("bare Starlette", "generator ceiling"), None),
    ]
    lines = [f"{'ratio':<36} {'ops/s':>7} {'by CPU':>7}  target (on ops/s)", "-" * 76]
    for label, (value, by_cost), goal in rows:
        shown = "".join(f"{v:>8.2f}" if v is not None else f"{'-':>8}" for v in (value, by_cost))
        verdict = "" if goal is None or value is None else (
            f">= {goal:.1f}  {'met' if value >= goal else 'NOT met'}")
        lines.append(f"{label:<36}{shown}  {verdict}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per scenario")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up time per scenario")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--mint-budget", type=float, default=None,
                        help="most seconds spent minting codes per step (default 6 x --seconds)")
    parser.add_argument("--no-peer", action="store_true", help="skip oidc-provider")
    parser.add_argument("--no-bankid", action="store_true",
                        help="skip the BankID logins (e.g. measuring an older version)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="also run the broker on this many workers for the scaling factor "
                             "(default: the number of CPUs; 1: skip)")
    parser.add_argument("--store", choices=["redis", "cluster"], default="redis",
                        help="the broker's state on one Redis, or on a Redis Cluster of 3 masters "
                             "and 3 replicas (oidc-provider stays on one Redis)")
    parser.add_argument("--profile", action="store_true",
                        help="only the broker's scenarios (login-to-code, redemption, refresh, BankID "
                        "login), each under a profiler")
    parser.add_argument("--profiler", choices=["pyinstrument", "cprofile"], default="pyinstrument",
                        help="pyinstrument falls back to cProfile when not installed")
    parser.add_argument("--profile-all", action="store_true",
                        help="pyinstrument: keep library frames in the call tree")
    parser.add_argument("--profile-chars", type=int, default=12000,
                        help="how much of each profile report to print")
    args = parser.parse_args(argv)
    args.mint_budget = args.mint_budget or 6 * args.seconds
    return args


async def main_async(args: argparse.Namespace) -> int:
    load = os.getloadavg()[0]
    if load > 0.5:
        log(f"warning: load average {load:.1f} before the start; other jobs on this machine "
            "skew the numbers (see the 'other' CPU column)")
    workdir = Path(tempfile.mkdtemp(prefix="broker-bench-"))
    try:
        with contextlib.ExitStack() as stack:
            url, proc = stack.enter_context(redis_server())
            single = RedisNodes(url, [(proc.pid, int(url.rsplit(":", 1)[1].split("/")[0]))])
            store = single
            if args.store == "cluster":
                cluster = stack.enter_context(redis_cluster())
                store = RedisNodes(cluster.url, [(cluster.procs[p].pid, p) for p in cluster.ports])
            bench = Bench(args, store, single)
            if args.profile:
                await bench.profile(workdir)
                return 0
            await bench.run_all(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print()
    print(f"concurrency {args.concurrency}, {args.seconds:g} s measured after {args.warmup:g} s "
          f"warm-up per scenario, {os.cpu_count()} CPUs shared by server, Redis and driver; "
          f"the broker's state on {'a 3+3 Redis Cluster' if args.store == 'cluster' else 'one Redis'}")
    print(table(bench.results))
    print()
    print(ratios(bench.results))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"run-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"args": vars(args), "results": [r.summary() for r in bench.results]},
                              indent=1))
    print(f"\nraw results: {out.relative_to(ROOT)}")
    return 0


def install_peer() -> None:
    """oidc-provider and ioredis at the versions pinned in bench/peer/package-lock.json."""
    if shutil.which("node") and not (PEER / "node_modules" / "oidc-provider").is_dir():
        log("installing the peer: npm ci in bench/peer")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=PEER, check=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (args.no_peer or args.profile):
        install_peer()
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main_async(args))
    return uvloop.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
