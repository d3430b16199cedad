"""The apps bench/run.py serves with uvicorn, one worker each, from the repo root.

    uvicorn --factory bench.app_factory:broker_app   # the broker (BENCH_* env, see below)
    uvicorn --factory bench.app_factory:bare_app     # a bare Starlette endpoint

The broker is built with `create_app` around the test FakeConnector (logs in at once as
the person in `login_hint`) and FakeSource (one valid assignment for Anna), over the real
Redis named by BENCH_REDIS. Two clients differ only in their ID token algorithm.
With BENCH_PROFILE=1 it also answers POST /_bench/profile/start and /_bench/profile/stop,
which profile the server's event loop thread in between (pyinstrument if installed, else
cProfile, or cProfile when BENCH_PROFILER=cprofile) and return the report as text
(pyinstrument's full call tree with ?all=1).
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import secrets
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

REDIRECT_URI = "https://rp.example/cb"
CLIENT_SECRET = "s" * 32
CLIENTS = {"RS256": "bench-rs", "ES256": "bench-es"}


def broker_settings(issuer: str, redis_url: str, workdir: Path) -> dict:
    return {
        "issuer": issuer,
        "store": {"url": redis_url, "prefix": f"bench{secrets.token_hex(3)}:"},
        "keys": {"dir": str(workdir / "keys"), "generate": True},
        # Pre-minted codes must outlive the minting phase (default 60 s).
        "tokens": {"code_ttl": 600},
        "audit": {"target": str(workdir / "audit.log")},
        "clients": [
            {"client_id": client_id, "client_name": f"Bench {alg}", "client_secret": CLIENT_SECRET,
             "token_endpoint_auth_method": "client_secret_basic",
             "redirect_uris": [REDIRECT_URI], "id_token_signed_response_alg": alg,
             "scopes": ["openid", "profile"]}
            for alg, client_id in CLIENTS.items()
        ],
    }


def broker_app() -> Starlette:
    from broker.app import create_app
    from broker.config import parse_settings
    from tests.support.fakes import FakeConnector, FakeSource, default_users

    workdir = Path(os.environ["BENCH_WORKDIR"])
    settings = parse_settings(
        broker_settings(os.environ["BENCH_ISSUER"], os.environ["BENCH_REDIS"], workdir),
        str(workdir / "broker.yaml"))
    source = FakeSource(default_users(tuple(CLIENTS.values())))
    extra = profiling_routes() if os.environ.get("BENCH_PROFILE") == "1" else []
    return create_app(settings, source=source, connectors={"test": FakeConnector},
                      extra_routes=extra)


def profiling_routes() -> list[Route]:
    running: dict[str, object] = {}

    async def start(request: Request) -> Response:
        try:
            if os.environ.get("BENCH_PROFILER") == "cprofile":
                raise ImportError
            from pyinstrument import Profiler
        except ImportError:
            profiler: object = cProfile.Profile()
            profiler.enable()  # type: ignore[attr-defined]
        else:
            profiler = Profiler(interval=0.0005, async_mode="disabled")
            profiler.start()
        running["profiler"] = profiler
        return Response(type(profiler).__module__)

    async def stop(request: Request) -> Response:
        profiler = running.pop("profiler")
        if isinstance(profiler, cProfile.Profile):
            profiler.disable()
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats("tottime").print_stats(40)
            stats.sort_stats("cumulative").print_stats(60)
            return Response(out.getvalue(), media_type="text/plain")
        profiler.stop()  # type: ignore[attr-defined]
        text = profiler.output_text(unicode=False, color=False,  # type: ignore[attr-defined]
                                    show_all=request.query_params.get("all") == "1")
        return Response(text, media_type="text/plain")

    return [Route("/_bench/profile/start", start, methods=["POST"]),
            Route("/_bench/profile/stop", stop, methods=["POST"])]


async def _bare(request: Request) -> Response:
    await request.body()
    return Response(b'{"ok":true}', media_type="application/json")


def bare_app() -> Starlette:
    """The framework ceiling: routing, a read body and a small JSON answer."""
    return Starlette(routes=[Route("/token", _bare, methods=["GET", "POST"])])
