"""Real backends for the authorization tests: a throwaway PostgreSQL cluster, SQLite files,
and an HTTP authorization service under uvicorn."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import uvicorn
from authz_support import Service, free_port
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.authz.databases import (  # noqa: F401 (fixtures)
    db_url,
    pg_url,
    postgres_admin_url,
    sqlite_url,
)
from tests.support.server import running

# --- the HTTP authorization service -------------------------------------------------------


def _service_app(service: Service) -> Starlette:
    async def authz(request: Request) -> Response:
        body = await request.json()
        service.requests.append((body, dict(request.headers)))
        if service.delay:
            await asyncio.sleep(service.delay)
        if service.status is not None:
            return Response("failure", status_code=service.status)
        if body.get("ping"):
            return Response(status_code=204)
        if service.override is not None:
            return JSONResponse(service.override)
        for user in service.users:
            if ("user_id" in body and user["id"] == body["user_id"]) or (
                body.get("personal_identity_number")
                and user.get("personal_identity_number") == body["personal_identity_number"]
            ) or (body.get("hsa_id") and user.get("hsa_id") == body["hsa_id"]):
                return JSONResponse(user)
        return JSONResponse({"error": "unknown user"}, status_code=404)

    return Starlette(routes=[Route("/authz", authz, methods=["POST"])])


@pytest.fixture(scope="session")
def http_service_session() -> Iterator[Service]:
    service = Service()
    port = free_port()
    config = uvicorn.Config(_service_app(service), host="127.0.0.1", port=port,
                            log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
    with running(config):
        service.url = f"http://127.0.0.1:{port}/authz"
        yield service


@pytest.fixture
def http_service(http_service_session: Service) -> Service:
    http_service_session.reset()
    return http_service_session
