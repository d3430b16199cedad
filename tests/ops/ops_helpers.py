"""Process-level helpers for the operations tests: broker replicas as real `broker serve`
subprocesses (tests/support/replica_app.py), a login driven by hand across replicas, the
metrics scrape, and a Redis Sentinel set-up of real redis-server / redis-sentinel processes.

Everything listens on 127.0.0.1 and every wait is bounded.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from broker.keys import KeyRing
from tests.support.redis import free_port
from tests.support.rp import pkce

REPO = Path(__file__).resolve().parents[2]
REDIRECT = "https://rp.example/cb"
SECRET = "s" * 32
ANNA = "199001012385"      # one assignment: logs in straight through
BERTIL = "198505152384"    # two assignments: the picker page comes first


def write_config(directory: Path, *, issuer: str, store_url: str, metrics_port: int,
                 prefix: str | None = None, trusted_proxies: list[str] | None = None,
                 graceful: int = 10, keys_dir: Path | None = None,
                 store: dict | None = None, backchannel_uri: str | None = None,
                 backchannel: dict | None = None) -> Path:
    """A broker.yaml for replicas; keys are made once so every replica signs alike."""
    directory.mkdir(parents=True, exist_ok=True)
    keys = keys_dir or directory / "keys"
    if not keys.exists():
        ring = KeyRing(keys, retention=3600)
        ring.load()
        ring.generate_missing()
    config = {
        "issuer": issuer,
        "store": {"url": store_url, "prefix": prefix or f"ops{secrets.token_hex(4)}:",
                  **(store or {})},
        "keys": {"dir": str(keys), "generate": False},
        "audit": {"target": str(directory / "audit.log")},
        "metrics": {"port": metrics_port},
        "http": {"trusted_proxies": trusted_proxies or [], "graceful_shutdown_seconds": graceful},
        "clients": [{"client_id": "rp-basic", "client_name": "Lifecare", "client_secret": SECRET,
                     "redirect_uris": [REDIRECT], "scopes": ["openid", "profile"],
                     **({"backchannel_logout_uri": backchannel_uri} if backchannel_uri else {})}],
        **({"backchannel": backchannel} if backchannel else {}),
    }
    path = directory / f"broker-{secrets.token_hex(3)}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


class Replica:
    """One `broker serve` process (the test app factory) on a fixed port."""

    def __init__(self, config: Path, *, port: int | None = None, metrics_port: int | None = None,
                 workers: int = 1, log_dir: Path | None = None) -> None:
        self.config = config
        self.port = port or free_port()
        self.metrics_port = metrics_port
        self.workers = workers
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="broker-replica-"))
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Replica:
        self.starts += 1
        env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        self.stderr_path = self.log_dir / f"stderr-{self.port}-{self.starts}.log"
        self.stdout_path = self.log_dir / f"stdout-{self.port}-{self.starts}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.replica_app", "serve", "--config", str(self.config),
             "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers),
             "--log-level", "info"],
            cwd=REPO, env=env, stdin=subprocess.DEVNULL,
            stdout=self.stdout_path.open("wb"), stderr=self.stderr_path.open("wb"),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"replica exited with {self.proc.returncode}:\n{self.stderr()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"replica did not answer /healthz in {timeout} s:\n{self.stderr()}")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def log_lines(self) -> list[dict]:
        """Every stderr line, parsed as JSON (a line that is not JSON fails the test)."""
        out = []
        for line in self.stderr().splitlines():
            if line.strip():
                out.append(json.loads(line))
        return out

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """The metrics port's samples as {(name, sorted labels): value}."""
        assert self.metrics_port is not None
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        return parse_samples(text)


def parse_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels` (0 when none)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


# -- a login driven by hand -------------------------------------------------------------------
class StoreUnavailable(Exception):
    """The broker answered a clean 503 (the store is away): the step may be retried."""


@dataclass
class Login:
    """One authorization-code login whose steps can go to different replicas."""

    login_hint: str = ANNA
    browser: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))
    verifier: str = ""
    state: str = ""
    txn_path: str = ""
    csrf: str = ""
    code: str = ""

    def authorize(self, base: str) -> str:
        self.verifier, challenge = pkce()
        self.state = secrets.token_urlsafe(8)
        params = {"response_type": "code", "client_id": "rp-basic", "redirect_uri": REDIRECT,
                  "scope": "openid", "state": self.state, "nonce": secrets.token_urlsafe(8),
                  "code_challenge": challenge, "code_challenge_method": "S256",
                  "login_hint": self.login_hint}
        r = _checked(self.browser.get(base + "/authorize?" + urlencode(params)))
        assert r.status_code in (302, 303), (r.status_code, r.text[:300])
        self.txn_path = urlsplit(r.headers["location"]).path
        assert self.txn_path.startswith("/login/"), r.headers["location"]
        return self.txn_path

    def open(self, base: str) -> httpx.Response:
        """GET /login/<txn>: binds the browser; Anna gets her code, Bertil the picker."""
        r = _checked(self.browser.get(base + self.txn_path))
        if r.status_code in (302, 303):
            self._take_code(r)
        else:
            assert r.status_code == 200, (r.status_code, r.text[:300])
            m = re.search(r'name="csrf" value="([^"]+)"', r.text)
            assert m, r.text[:500]
            self.csrf = m.group(1)
        return r

    def select(self, base: str, assignment: str = "a-b-2") -> httpx.Response:
        r = _checked(self.browser.post(base + self.txn_path + "/select",
                                       data={"csrf": self.csrf, "assignment": assignment}))
        assert r.status_code in (302, 303), (r.status_code, r.text[:300])
        self._take_code(r)
        return r

    def _take_code(self, r: httpx.Response) -> None:
        location = r.headers["location"]
        assert location.startswith(REDIRECT), location
        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        assert query.get("state") == self.state and "code" in query, query
        self.code = query["code"]

    def redeem(self, base: str) -> dict:
        r = _checked(httpx.post(base + "/token", auth=("rp-basic", SECRET), timeout=10, data={
            "grant_type": "authorization_code", "code": self.code, "redirect_uri": REDIRECT,
            "code_verifier": self.verifier}))
        assert r.status_code == 200, (r.status_code, r.text[:300])
        body = r.json()
        assert body["id_token"] and body["access_token"], body
        return body

    def still_works(self, base: str, tokens: dict) -> bool:
        """After the fact: the refresh token refreshes and the SSO cookie still logs in
        (prompt=none gets a code), i.e. nothing of this login was lost."""
        r = httpx.post(base + "/token", auth=("rp-basic", SECRET), timeout=10, data={
            "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
        if r.status_code != 200:
            return False
        _, challenge = pkce()
        params = {"response_type": "code", "client_id": "rp-basic", "redirect_uri": REDIRECT,
                  "scope": "openid", "state": "s", "nonce": "n", "prompt": "none",
                  "code_challenge": challenge, "code_challenge_method": "S256"}
        r = self.browser.get(base + "/authorize?" + urlencode(params))
        for _ in range(5):
            location = r.headers.get("location", "")
            if location.startswith(REDIRECT) or r.status_code not in (302, 303):
                break
            r = self.browser.get(base + location if location.startswith("/") else location)
        return "code=" in r.headers.get("location", "")

    def close(self) -> None:
        self.browser.close()


def _checked(r: httpx.Response) -> httpx.Response:
    """A 503 is the broker's clean "store unavailable" answer; anything 5xx else is a bug."""
    if r.status_code == 503:
        raise StoreUnavailable(r.text[:200])
    assert r.status_code < 500, (r.status_code, r.text[:500])
    return r


