"""The apps bench/run.py serves with uvicorn, one worker each, from the repo root.

    uvicorn --factory bench.app_factory:broker_app   # the broker (BENCH_* env, see below)
    uvicorn --factory bench.app_factory:bankid_app   # the broker with BankID (simulator)
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
        # One load generator on 127.0.0.1 is thousands of browsers.
        "login": {"authorize_per_address_per_minute": 100_000},
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


ANNA = "199001012385"  # one valid assignment: straight through
ERIK = "198502022398"  # two: the role picker comes first


def bankid_app() -> Starlette:
    """The broker with the BankID connector and its embedded simulator approving every
    order at once as BENCH_BANKID_PERSON: the whole login a person does, minus the person."""
    from broker.app import create_app
    from broker.authz import User
    from broker.config import parse_settings
    from tests.support.fakes import FakeSource, assignment, default_users

    workdir = Path(os.environ["BENCH_WORKDIR"])
    person = os.environ.get("BENCH_BANKID_PERSON", ANNA)
    config = broker_settings(os.environ["BENCH_ISSUER"], os.environ["BENCH_REDIS"], workdir)
    config["connectors"] = {"bankid": {
        "environment": "simulator",
        "simulator": {"auto_approve": person, "auto_approve_delay": 0},
        # One load generator on 127.0.0.1 is thousands of people: the start limit of one
        # office address would refuse it (it has an office-sized budget here instead).
        "rate_limits": {"networks": [{"network": "127.0.0.0/8",
                                      "starts_per_minute": 100_000}]},
    }}
    settings = parse_settings(config, str(workdir / f"bankid-{person}.yaml"))
    clients = tuple(CLIENTS.values())
    erik = User(id="u-erik", personal_identity_number=ERIK, given_name="Erik",
                family_name="Eriksson",
                assignments=(assignment("e-1", "handlaggare", "U1", clients),
                             assignment("e-2", "chef", "U2", clients)))
    source = FakeSource([*default_users(clients), erik])
    extra = profiling_routes() if os.environ.get("BENCH_PROFILE") == "1" else []
    return create_app(settings, source=source, extra_routes=extra)


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
            if os.environ.get("BENCH_PROFILE_DUMP"):  # raw pstats, for grouping by package
                profiler.dump_stats(os.environ["BENCH_PROFILE_DUMP"])
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
