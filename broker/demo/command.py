"""Builds and runs the demo: one process, memory store, generated dev keys."""

from __future__ import annotations

import argparse
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..config import parse_settings

HERE = Path(__file__).parent
CLIENT_ID = "lifecare"


def demo_settings(workdir: Path, host: str, port: int, auto_approve: str | None) -> dict[str, Any]:
    issuer = f"http://{host}:{port}"
    secret = secrets.token_urlsafe(32)
    shutil.copy(HERE / "authz.yaml", workdir / "authz.yaml")
    simulator: dict[str, Any] = {}
    if auto_approve:
        simulator = {"auto_approve": auto_approve, "auto_approve_delay": 2}
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
        "connectors": {"bankid": {"environment": "simulator", "simulator": simulator}},
        "authorization": {"source": "file", "path": str(workdir / "authz.yaml")},
    }


def build_demo(workdir: Path, host: str, port: int, auto_approve: str | None = None):  # type: ignore[no-untyped-def]
    from starlette.routing import Mount

    from ..app import create_app
    from .rp import create_demo_rp

    data = demo_settings(workdir, host, port, auto_approve)
    settings = parse_settings(data, str(workdir / "demo.yaml"))
    issuer = settings.issuer
    rp = create_demo_rp(issuer, CLIENT_ID, data["clients"][0]["client_secret"], issuer + "/demo-rp")
    return create_app(settings, extra_routes=[Mount("/demo-rp", app=rp)])


def run(args: argparse.Namespace) -> int:
    import uvicorn

    workdir = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="broker-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    app = build_demo(workdir, args.host, args.port, args.auto_approve)
    base = f"http://{args.host}:{args.port}"
    print(f"""
  Broker demo is running (files in {workdir}).

    Demo relying party:    {base}/demo-rp/          <- start here: "Logga in i Lifecare (demo)"
    BankID simulator app:  {base}/bankid-simulator/app   (approve pending orders as a test person)
    Discovery:             {base}/.well-known/openid-configuration

  Test persons: 199001012385 Anna (one role), 198502022398 Erik (two roles: the picker),
  197003032385 Maria (expired authorization: no access). Ctrl-C stops.
""", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def add_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run broker, BankID simulator and a demo RP in one process")
    p.add_argument("--host", default="localhost")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--dir", help="where keys, authorizations and the audit log go (default: a temp dir)")
    p.add_argument("--auto-approve", metavar="PERSONAL_NUMBER",
                   help="the simulator approves every order as this person after 2 s")
    p.set_defaults(func=run)
