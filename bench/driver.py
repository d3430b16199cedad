"""The load generator: aiohttp on one event loop, a fixed number of workers, each doing
one operation after another until a deadline.

An operation is a coroutine that returns the latency that counts (a login times all of its
requests; a redemption only its token request). Operations that start inside the window
are counted; `Exhausted` (no codes left) ends a worker early, and the window with it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import json
import math
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import aiohttp
from yarl import URL

Operation = Callable[[], Awaitable[float]]


class Exhausted(Exception):
    """No pre-minted code left for a redemption."""


class Failed(Exception):
    """An answer that is not what a successful operation gets."""


@dataclass
class Result:
    name: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None
    note: str = ""
    cpu: dict[str, float] = field(default_factory=dict)  # process -> % of one core
    redis_commands: float = math.nan  # per operation, every node together

    @property
    def ops(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def summary(self) -> dict:
        return {"name": self.name, "ops": self.ops, "seconds": round(self.seconds, 3),
                "ops_per_s": round(self.rate, 1), "p50_ms": round(self.percentile(0.5) * 1e3, 2),
                "p99_ms": round(self.percentile(0.99) * 1e3, 2), "errors": self.errors,
                "first_error": self.first_error, "note": self.note, "cpu_percent": self.cpu,
                "redis_commands_per_op": round(self.redis_commands, 2)}


async def run_load(name: str, op: Operation, concurrency: int, seconds: float) -> Result:
    """`concurrency` workers repeat `op` for `seconds` (or until the codes run out)."""
    result = Result(name)
    start = time.perf_counter()
    deadline = start + seconds
    finished: list[float] = []
    dry = False

    async def worker() -> None:
        nonlocal dry
        while time.perf_counter() < deadline:
            try:
                result.latencies.append(await op())
            except Exhausted:
                dry = True
                break
            except (TimeoutError, Failed, aiohttp.ClientError, KeyError, ValueError) as exc:
                result.errors += 1
                result.first_error = result.first_error or f"{type(exc).__name__}: {exc}"[:300]
                if result.errors > 1000 and result.errors > 10 * len(result.latencies):
                    break  # a server that only fails: stop instead of spinning
        finished.append(time.perf_counter())

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    # Out of codes, every worker stops within one operation: the window ends with the last.
    end = min(max(finished), deadline) if dry else deadline
    result.seconds = end - start
    if dry and result.seconds < 0.98 * seconds:
        result.note = f"codes ran out after {result.seconds:.1f} s"
    return result


# -- OIDC operations -------------------------------------------------------------------------
def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class Target:
    """An OP as the driver sees it: where it answers and which client signs with what."""

    label: str
    base: str
    authorize_path: str
    token_path: str
    clients: dict[str, str]  # alg -> client_id
    secret: str
    redirect_uri: str
    pools: dict[str, deque] = field(default_factory=dict)  # alg -> (code, verifier)
    # alg -> refresh tokens: the heads of refresh chains, one taken per refresh and its
    # successor put back, so a chain is only ever used by one worker at a time.
    chains: dict[str, deque] = field(default_factory=dict)
    userinfo_path: str = "/userinfo"
    # alg -> access tokens for UserInfo (reused: reading it changes nothing)
    bearers: dict[str, list] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pools = {alg: deque() for alg in self.clients}
        self.chains = {alg: deque() for alg in self.clients}
        self.bearers = {alg: [] for alg in self.clients}
        self._next = 0
        self.basic = {alg: "Basic " + base64.b64encode(f"{cid}:{self.secret}".encode()).decode()
                      for alg, cid in self.clients.items()}

    def next_alg(self) -> str:
        algs = list(self.clients)
        self._next += 1
        return algs[self._next % len(algs)]


async def login(http: aiohttp.ClientSession, target: Target, alg: str | None = None,
                max_hops: int = 10, pick: str | None = None) -> float:
    """A fresh browser: authorize, follow the OP's redirects with its cookies, get a code.
    With `pick`, a role and unit picker page on the way is answered with that assignment
    (the form's own action and CSRF token), as a person would."""
    alg = alg or target.next_alg()
    verifier, challenge = pkce()
    state = secrets.token_urlsafe(8)
    params = {"response_type": "code", "client_id": target.clients[alg],
              "redirect_uri": target.redirect_uri, "scope": "openid", "state": state,
              "nonce": secrets.token_urlsafe(8), "code_challenge": challenge,
              "code_challenge_method": "S256"}
    url = f"{target.base}{target.authorize_path}?{urlencode(params)}"
    jar = aiohttp.CookieJar(unsafe=True, quote_cookie=False)
    began = time.perf_counter()
    for _ in range(max_hops):
        cookies = jar.filter_cookies(URL(url))
        headers = {"Cookie": "; ".join(f"{k}={m.value}" for k, m in cookies.items())} if cookies else {}
        async with http.get(url, headers=headers, allow_redirects=False) as resp:
            body = await resp.read()
            jar.update_cookies(resp.cookies, resp.url)
            if resp.status == 200 and pick is not None and b'name="assignment"' in body:
                location = await _pick(http, jar, url, body, pick)
            elif resp.status not in (302, 303):
                raise Failed(f"{resp.status} at {urlsplit(url).path}")
            else:
                location = resp.headers["Location"]
        if location.startswith(target.redirect_uri):
            elapsed = time.perf_counter() - began
            query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
            if query.get("state") != state or "code" not in query:
                raise Failed(f"redirect without code: {location[:200]}")
            target.pools[alg].append((query["code"], verifier))
            return elapsed
        url = urljoin(url, location)
        if not url.startswith(target.base):
            raise Failed(f"redirect off the OP: {location[:200]}")
    raise Failed("too many redirects")


async def _pick(http: aiohttp.ClientSession, jar: aiohttp.CookieJar, url: str, page: bytes,
                assignment: str) -> str:
    text = page.decode()
    action = re.search(r'action="([^"]+/select)"', text)
    csrf = re.search(r'name="csrf" value="([^"]+)"', text)
    if not action or not csrf:
        raise Failed("a picker page without its form")
    target = urljoin(url, html.unescape(action.group(1)))
    cookies = jar.filter_cookies(URL(target))
    headers = {"Cookie": "; ".join(f"{k}={m.value}" for k, m in cookies.items()),
               "Content-Type": "application/x-www-form-urlencoded"}
    body = urlencode({"csrf": html.unescape(csrf.group(1)), "assignment": assignment})
    async with http.post(target, data=body, headers=headers, allow_redirects=False) as resp:
        await resp.read()
        if resp.status not in (302, 303):
            raise Failed(f"{resp.status} at the picker")
        jar.update_cookies(resp.cookies, resp.url)
        return resp.headers["Location"]


async def redeem(http: aiohttp.ClientSession, target: Target, alg: str,
                 check: bool = False, keep_chain: bool = False) -> float:
    """One authorization_code grant with a pre-minted code; times only this request."""
    try:
        code, verifier = target.pools[alg].popleft()
    except IndexError:
        raise Exhausted from None
    body = urlencode({"grant_type": "authorization_code", "code": code,
                      "redirect_uri": target.redirect_uri, "code_verifier": verifier})
    headers = {"Authorization": target.basic[alg],
               "Content-Type": "application/x-www-form-urlencoded"}
    began = time.perf_counter()
    async with http.post(target.base + target.token_path, data=body, headers=headers) as resp:
        raw = await resp.read()
    elapsed = time.perf_counter() - began
    if resp.status != 200 or b'"id_token"' not in raw:
        raise Failed(f"{resp.status}: {raw[:200]!r}")
    if check or keep_chain:
        answer = json.loads(raw)
        header = json.loads(base64.urlsafe_b64decode(answer["id_token"].split(".")[0] + "=="))
        if header.get("alg") != alg or not answer.get("refresh_token"):
            raise Failed(f"expected an {alg} ID token and a refresh token, got {header} "
                         f"and keys {sorted(answer)}")
        if keep_chain:
            target.chains[alg].append(answer["refresh_token"])
            target.bearers[alg].append(answer["access_token"])
    return elapsed


async def refresh(http: aiohttp.ClientSession, target: Target, alg: str) -> float:
    """One refresh_token grant (rotation: the answer's refresh token continues the chain);
    times only this request."""
    try:
        token = target.chains[alg].popleft()
    except IndexError:
        raise Exhausted from None
    body = urlencode({"grant_type": "refresh_token", "refresh_token": token})
    headers = {"Authorization": target.basic[alg],
               "Content-Type": "application/x-www-form-urlencoded"}
    began = time.perf_counter()
    async with http.post(target.base + target.token_path, data=body, headers=headers) as resp:
        raw = await resp.read()
    elapsed = time.perf_counter() - began
    if resp.status != 200 or b'"id_token"' not in raw:
        raise Failed(f"{resp.status}: {raw[:200]!r}")
    successor = json.loads(raw).get("refresh_token")
    if not successor or successor == token:
        raise Failed("the refresh token was not rotated")
    target.chains[alg].append(successor)
    return elapsed


async def userinfo(http: aiohttp.ClientSession, target: Target, alg: str) -> float:
    """One UserInfo request with a Bearer access token; times only this request."""
    tokens = target.bearers[alg]
    if not tokens:
        raise Exhausted
    target._next += 1
    headers = {"Authorization": "Bearer " + tokens[target._next % len(tokens)]}
    began = time.perf_counter()
    async with http.get(target.base + target.userinfo_path, headers=headers) as resp:
        raw = await resp.read()
    elapsed = time.perf_counter() - began
    if resp.status != 200 or b'"sub"' not in raw:
        raise Failed(f"{resp.status}: {raw[:200]!r}")
    return elapsed


async def ceiling_request(http: aiohttp.ClientSession, url: str, body: str,
                          headers: dict[str, str]) -> float:
    """The redemption's request shape against a server that does nothing."""
    began = time.perf_counter()
    async with http.post(url, data=body, headers=headers) as resp:
        raw = await resp.read()
    elapsed = time.perf_counter() - began
    if resp.status != 200 or not raw:
        raise Failed(f"{resp.status}")
    return elapsed


def session(concurrency: int) -> aiohttp.ClientSession:
    """Keep-alive connections, one per worker; cookies are kept per login, not here."""
    connector = aiohttp.TCPConnector(limit=concurrency * 2, force_close=False,
                                     keepalive_timeout=60)
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                 timeout=aiohttp.ClientTimeout(total=30))
