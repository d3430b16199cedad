"""A broker replica for process-level tests: `broker serve` exactly, with test fakes inside.

`python -m tests.support.replica_app serve --config broker.yaml --port N [--workers K]`
runs `broker.cli.serve` (JSON logs, metrics port, graceful shutdown, uvicorn workers) with
an app factory that plugs in the FakeConnector (logs in at once as `login_hint`) and the
FakeSource, plus test-only routes under /test/. Nothing here is reachable from a
deployment: the config cannot name these fakes.

Run it with the repository root on PYTHONPATH (tests/ is not a package of the broker).
"""

from __future__ import annotations

import asyncio
import os
import sys

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from broker.app import create_app
from broker.cli import build_parser, serve
from broker.config import Settings, load_settings
from tests.support.fakes import FakeConnector, FakeSource, default_users

FACTORY = "tests.support.replica_app:app_from_env"


async def slow(request: Request) -> Response:
    """A request that takes `seconds` (default 2): something to be in flight at SIGTERM."""
    seconds = min(float(request.query_params.get("seconds", "2")), 30.0)
    await asyncio.sleep(seconds)
    return PlainTextResponse(f"slept {seconds}")


async def whoami(request: Request) -> Response:
    """What the app believes about the caller after the forwarded-headers middleware."""
    broker = request.app.state.broker
    return JSONResponse({
        "peer": request.client.host if request.client else None,
        "client_ip": broker.proxies.client_ip(request),
        "scheme": request.url.scheme,
        "request_id": request.scope.get("broker.request_id"),
    })


async def boom(request: Request) -> Response:
    raise RuntimeError("test-only failure for personal number 199001012385")


TEST_ROUTES = [Route("/test/slow", slow), Route("/test/whoami", whoami), Route("/test/boom", boom)]


def build(settings: Settings) -> Starlette:
    clients = tuple(c.client_id for c in settings.clients)
    return create_app(settings, source=FakeSource(default_users(clients)),
                      connectors={"test": FakeConnector},
                      extra_routes=list(TEST_ROUTES))


def app_from_env() -> Starlette:
    return build(load_settings(os.environ["BROKER_CONFIG"]))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "serve":
        raise SystemExit("only `serve` is supported here")
    return serve(args, factory=FACTORY)


if __name__ == "__main__":
    sys.exit(main())
