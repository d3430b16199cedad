"""Builds and runs the demo: one process, memory store, generated dev keys.

Three listeners in one process and one event loop (so they share the in-memory store):

- the broker with the BankID simulator and the demo RP, plain HTTP on `--port`;
- the SITHS host: the same app with TLS asking for a client certificate, on `--siths-port`
  (default `--port` + 363, so 8443 next to 8080), direct mode (`connectors/siths/host.py`);
- the test PKI's OCSP responder and CRLs (`connectors/siths/demo.py`), on `--siths-pki-port`
  (default: a free port), which the broker asks whether the test card is revoked.

`--no-siths` leaves out the last two and offers BankID only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from ..config import Settings, parse_settings

HERE = Path(__file__).parent
CLIENT_ID = "lifecare"
#: The SITHS host's port is the main port plus this (8080 -> 8443).
SITHS_PORT_OFFSET = 363


def demo_settings(workdir: Path, host: str, port: int, auto_approve: str | None,
                  siths: dict[str, Any] | None = None) -> dict[str, Any]:
    issuer = f"http://{_url_host(host)}:{port}"
    secret = secrets.token_urlsafe(32)
    shutil.copy(HERE / "authz.yaml", workdir / "authz.yaml")
    simulator: dict[str, Any] = {}
    if auto_approve:
        simulator = {"auto_approve": auto_approve, "auto_approve_delay": 2}
    connectors: dict[str, Any] = {"bankid": {"environment": "simulator", "simulator": simulator}}
    if siths is not None:
        connectors["siths"] = siths
    return {
        "issuer": issuer,
        "store": {"url": "memory://"},
        "keys": {"dir": str(workdir / "keys"), "generate": True},
        "audit": {"target": str(workdir / "audit.log")},
        "clients": [{
            "client_id": CLIENT_ID, "client_name": "Lifecare (demo)", "client_secret": secret,
            "redirect_uris": [f"{issuer}/demo-rp/callback"],
            "post_logout_redirect_uris": [f"{issuer}/demo-rp/"],
            "scopes": ["openid", "profile", "https://id.oidc.se/scope/naturalPersonNumber",
                       "https://id.oidc.se/scope/naturalPersonInfo", "assignments"],
        }],
        "connectors": connectors,
        "authorization": {"source": "file", "path": str(workdir / "authz.yaml")},
    }


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to `Demo.serve` (three servers in one loop would
    each install handlers and re-raise the signal on the way out) and can serve on a socket
    bound beforehand (the PKI port must be known before its certificates are made)."""

    def __init__(self, config: uvicorn.Config, sock: socket.socket | None = None) -> None:
        super().__init__(config)
        self._sock = sock

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        await super().serve(sockets or ([self._sock] if self._sock else None))


@dataclass
class Demo:
    """What `build_demo` made: the app, its settings and (unless left out) the SITHS parts."""

    app: Any
    settings: Settings
    workdir: Path
    base_url: str
    host: str
    port: int
    siths: Any = None  # connectors.siths.demo.DemoSiths, or None with --no-siths
    pki_socket: socket.socket | None = None

    def servers(self, log_level: str = "warning") -> list[uvicorn.Server]:
        """The main server first, then the SITHS host and the OCSP/CRL server (if any).

        Binds the ports here, so a port in use is a `DemoError` naming it, before anything runs.
        """
        main_socket = _bind(self.host, self.port, "--port")
        main = _Server(uvicorn.Config(self.app, host=self.host, port=self.port,
                                      log_level=log_level, proxy_headers=False,
                                      server_header=False), main_socket)
        if self.siths is None:
            return [main]
        from ..connectors.siths.host import siths_server_config

        siths_config = siths_server_config(self.app, self.settings, log_level=log_level)
        try:
            siths_socket = _bind(siths_config.host, siths_config.port, "--siths-port")
        except DemoError:
            main_socket.close()
            raise
        pki_config = uvicorn.Config(self.siths.pki_app, log_level=log_level, lifespan="off",
                                    server_header=False)
        return [main, _Server(siths_config, siths_socket),
                _Server(pki_config, self.pki_socket)]

    async def serve(self, servers: list[uvicorn.Server]) -> None:
        """Run `servers` (from `servers()`) until one stops; `servers[0].should_exit = True`
        stops them all."""
        if len(servers) == 1:
            await servers[0].serve()
            return
        from ..connectors.siths.host import serve_with_siths_host

        await serve_with_siths_host(*servers)

    def close(self) -> None:
        if self.pki_socket is not None:
            self.pki_socket.close()


def build_demo(workdir: Path, host: str, port: int, auto_approve: str | None = None, *,
               siths: bool = True, siths_port: int | None = None,
               pki_port: int = 0) -> Demo:
    """Write the demo's files into `workdir` and build the app.

    With `siths` (the default) the demo also offers SITHS: a fresh test PKI and card in
    `workdir/siths`, the SITHS host on `siths_port` (default `port` + 363) and the OCSP/CRL
    server on `pki_port` (0: a free port, bound here and kept until `Demo.close`).
    """
    from starlette.routing import Mount

    from ..app import create_app
    from .rp import create_demo_rp

    workdir = Path(workdir)
    siths_demo = pki_socket = None
    if siths:
        from ..connectors.siths.demo import prepare_demo

        pki_socket = _bind(host, pki_port, "--siths-pki-port")
        siths_demo = prepare_demo(workdir / "siths", host,
                                  siths_port or port + SITHS_PORT_OFFSET,
                                  pki_socket.getsockname()[1], bind=host)
    data = demo_settings(workdir, host, port, auto_approve,
                         siths_demo.settings if siths_demo else None)
    settings = parse_settings(data, str(workdir / "demo.yaml"))
    issuer = settings.issuer
    rp = create_demo_rp(issuer, CLIENT_ID, data["clients"][0]["client_secret"], issuer + "/demo-rp")
    app = create_app(settings, extra_routes=[Mount("/demo-rp", app=rp)], allow_test_only=True)
    return Demo(app=app, settings=settings, workdir=workdir, base_url=issuer, host=host,
                port=port, siths=siths_demo, pki_socket=pki_socket)


class DemoError(Exception):
    """Something the person running `broker demo` can fix (e.g. a port in use)."""


def _bind(host: str, port: int, flag: str) -> socket.socket:
    """A TCP socket bound to host:port, as uvicorn would bind it (IPv6 only for an address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise DemoError(f"cannot listen on {host}:{port} ({exc.strerror or exc}): is another "
                        f"program using the port? Choose another with {flag}.") from None
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def banner(demo: Demo, *, temporary: bool = False) -> str:
    base = demo.base_url
    kept = "removed when the demo stops" if temporary else "kept"
    text = f"""
  Broker demo is running (files in {demo.workdir}: {kept}).

    Demo relying party:    {base}/demo-rp/          <- start here: "Logga in i Lifecare (demo)"
    BankID simulator app:  {base}/bankid-simulator/app   (approve pending orders as a test person)
    Discovery:             {base}/.well-known/openid-configuration

  Test persons: 199001012385 Anna (one role), 198502022398 Erik (two roles: the picker),
  197003032385 Maria (expired authorization: no access).
"""
    s = demo.siths
    if s is not None:
        d = s.directory
        text += f"""
  SITHS card login (test PKI made for this run; new keys every start, so re-import):
    SITHS host:            {s.login_url}
    OCSP/CRL responder:    {s.pki_url}/
    Test card (Anna, HSA-id SE2321000016-1234):
                           {s.card}
    Card password:         {s.card_password}
    Same card as PEM:      {d / 'anna-hsa-chain.pem'} + {d / 'anna-hsa.key'}
    Other test cards:      {', '.join(str(p) for p in s.cards.values())}
    Test root CA:          {s.root_ca}

  To log in with the card: import the .p12 file into the browser's own certificates
  (Firefox: Settings > Privacy & Security > Certificates > View Certificates > Your
  Certificates > Import; Chrome/Chromium: Settings > Privacy and security > Security >
  Manage certificates > Your certificates > Import), then choose "SITHS-kort" on the login
  page. The SITHS host's certificate comes from the test PKI: accept the browser's warning
  for {s.login_url.split('/login/')[0]} once, or trust the test root CA in a test profile.
  The browser remembers the certificate you chose: close every browser window to pick
  another card.
"""
    return text + "\n  Ctrl-C stops.\n"


#: Signals that stop the demo (Ctrl-C, `kill`, the terminal closing), cleanly: servers
#: stopped, the temporary directory removed.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _Stopped(Exception):
    """A stop signal arrived before (or after) the servers were running."""


def _raise_stopped(signum: int, _frame: Any) -> None:
    raise _Stopped(signum)


def run(args: argparse.Namespace) -> int:
    """Run the demo until a stop signal. Without `--dir` its files (private keys, the test
    PKI and cards, an audit log with personal identity numbers) live in a new temporary
    directory that is removed on the way out, however the demo stops short of SIGKILL."""
    # A signal ignored when we start (SIGHUP under nohup) stays ignored.
    signals = tuple(s for s in STOP_SIGNALS if signal.getsignal(s) is not signal.SIG_IGN)
    previous = {sig: signal.signal(sig, _raise_stopped) for sig in signals}
    workdir = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="broker-demo-"))
    try:
        return _run(args, workdir, signals, temporary=not args.dir)
    except _Stopped:
        print("  Broker demo stopped.", flush=True)
        return 0
    finally:
        for sig in signals:  # a second Ctrl-C must not cut the clean-up short
            signal.signal(sig, signal.SIG_IGN)
        if not args.dir:
            shutil.rmtree(workdir, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(args: argparse.Namespace, workdir: Path, signals: tuple[signal.Signals, ...], *,
         temporary: bool) -> int:
    workdir.mkdir(parents=True, exist_ok=True)
    demo = None
    try:
        demo = build_demo(workdir, args.host, args.port, args.auto_approve,
                          siths=not args.no_siths, siths_port=args.siths_port,
                          pki_port=args.siths_pki_port)
        servers = demo.servers()
    except DemoError as exc:
        if demo is not None:
            demo.close()
        print(f"broker demo: {exc}", file=sys.stderr)
        return 2
    try:
        print(banner(demo, temporary=temporary), flush=True)
        asyncio.run(_serve_until_signal(demo, servers, signals))
    finally:
        demo.close()
    print("  Broker demo stopped.", flush=True)
    return 0


async def _serve_until_signal(demo: Demo, servers: list[uvicorn.Server],
                              signals: tuple[signal.Signals, ...]) -> None:
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for server in servers:
            if server.should_exit:  # the second Ctrl-C: do not wait for open connections
                server.force_exit = True
            server.should_exit = True

    for sig in signals:
        loop.add_signal_handler(sig, stop)
    try:
        await demo.serve(servers)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
            # remove_signal_handler restores the default action (death by the signal for
            # SIGTERM): until `run` returns, a stop signal still means "clean up and exit".
            signal.signal(sig, _raise_stopped)


def add_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run broker, BankID simulator, SITHS test host and a demo RP "
                                    "in one process")
    p.add_argument("--host", default="localhost",
                   help="address to listen on and host name in the URLs (default: localhost)")
    p.add_argument("--port", type=int, default=8080,
                   help="port of the broker, the demo RP and the BankID simulator (default: 8080)")
    p.add_argument("--siths-port", type=int, default=None,
                   help=f"port of the SITHS (client certificate) host, https "
                        f"(default: --port + {SITHS_PORT_OFFSET}, i.e. 8443)")
    p.add_argument("--siths-pki-port", type=int, default=0, metavar="PORT",
                   help="port of the test PKI's OCSP/CRL server (default: a free port)")
    p.add_argument("--no-siths", action="store_true",
                   help="offer BankID only: no SITHS host, no test card")
    p.add_argument("--dir", help="where keys, authorizations, the test cards and the audit log "
                                 "go, kept after the demo stops (default: a temporary "
                                 "directory, removed when the demo stops)")
    p.add_argument("--auto-approve", metavar="PERSONAL_NUMBER",
                   help="the simulator approves every order as this person after 2 s")
    p.set_defaults(func=run)
