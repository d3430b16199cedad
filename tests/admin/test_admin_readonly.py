"""With the file or HTTP authorization source the admin app shows, never changes, and says
why: requests and reviews need the SQL source."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import yaml
from admin_support import (
    IT,
    MANAGER_A,
    USERS,
    AdminBroker,
    Outbox,
    Today,
    admin_config,
    admin_login,
    csrf,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from broker.app import create_app
from broker.config import parse_settings
from broker.store import open_store
from tests.support.redis import free_port
from tests.support.server import serve


def start(tmp_path: Path, redis: str, authorization: dict):
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    data = admin_config(issuer, redis, tmp_path, "sqlite+aiosqlite:///unused.db", 25)
    data["authorization"] = authorization
    settings = parse_settings(data, str(tmp_path / "broker.yaml"))
    app = create_app(settings, store=open_store(redis, settings.store.prefix))
    return issuer, port, app


@pytest.fixture
def file_broker(tmp_path: Path, redis: str):
    (tmp_path / "authz.yaml").write_text(yaml.safe_dump({"users": USERS}, allow_unicode=True))
    issuer, port, app = start(tmp_path, redis, {"source": "file", "path": "authz.yaml"})
    with serve(app, port):
        yield AdminBroker(issuer, app, tmp_path, "", Outbox(), Today(None))


def test_file_source_is_listed_read_only(file_broker):
    ab = file_broker
    with admin_login(ab, MANAGER_A) as manager:
        home = manager.get("/admin/")
        assert "kommer från en fil och kan inte ändras här" in home.text
        staff = manager.get("/admin/users").text
        assert "Anna" in staff and "Erik" not in staff  # the manager's organisation only
        user = manager.get("/admin/users/u-anna")
        assert user.status_code == 200 and "Begär att" not in user.text and "<form method=\"post\" action=\"/admin/users/u-anna/" not in user.text
        assert manager.get("/admin/users/u-erik").status_code == 403
        refused = manager.post("/admin/users/u-anna/assignments/a-anna/end",
                               data={"csrf": csrf(home.text)})
        assert refused.status_code == 409 and "Endast läsning" in refused.text
        assert manager.get("/admin/requests/new").status_code == 409
        assert "Inga." in manager.get("/admin/requests").text
    with admin_login(ab, IT) as it:
        assert "Erik" in it.get("/admin/users").text
        token = csrf(it.get("/admin/").text)
        assert it.post("/admin/users/u-anna", data={"csrf": token, "active": "yes"}
                       ).status_code == 409
    assert (ab.tmp / "authz.yaml").read_text() == yaml.safe_dump({"users": USERS},
                                                                 allow_unicode=True)


@pytest.fixture
def http_broker(tmp_path: Path, redis: str):
    token = secrets.token_urlsafe(16)

    async def lookup(request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {token}":
            return Response(status_code=401)
        asked = await request.json()
        if asked.get("ping"):
            return Response(status_code=204)
        for user in USERS:
            if asked.get("user_id") == user["id"] or (
                    asked.get("personal_identity_number")
                    and asked["personal_identity_number"] == user["personal_identity_number"]):
                return JSONResponse(user)
        return JSONResponse({}, status_code=404)

    service_port = free_port()
    service = Starlette(routes=[Route("/authz", lookup, methods=["POST"])])
    with serve(service, service_port) as service_url:
        issuer, port, app = start(tmp_path, redis, {
            "source": "http", "url": f"{service_url}/authz", "bearer_token": token})
        with serve(app, port):
            yield AdminBroker(issuer, app, tmp_path, "", Outbox(), Today(None))


def test_http_source_cannot_list_and_changes_nothing(http_broker):
    ab = http_broker
    with admin_login(ab, MANAGER_A) as manager:
        home = manager.get("/admin/")
        assert "kommer från ett externt system" in home.text
        assert "kan inte lista personal" in manager.get("/admin/users").text
        shown = manager.get("/admin/users/u-anna")
        assert shown.status_code == 200 and "anna.a" in shown.text  # accounts over HTTP too
        assert manager.get("/admin/users/u-erik").status_code == 403
        assert manager.post("/admin/reviews", data={"csrf": csrf(home.text)}
                            ).status_code == 409
