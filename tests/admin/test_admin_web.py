"""The admin pages as an attacker and a hurried person would use them: reviews on one
page, tampered forms, withdrawn rights, cookies and headers, outages, read-only sources."""

from __future__ import annotations

import asyncio
import re
from datetime import date, timedelta

import httpx
import pytest
from admin_support import (
    IT,
    MANAGER_A,
    MANAGER_B,
    ORG_A,
    USERS,
    admin_login,
    body,
    csrf,
)

from broker.authz.records import AssignmentRecord
from broker.authz.sql import access, admin
from broker.authz.sql.engine import create_engine


async def _write(db_url: str, work) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await work(conn)
    finally:
        await engine.dispose()


def add_assignment(db_url: str, user: str, unit: str, review_due: date, org=ORG_A) -> str:
    record = AssignmentRecord.model_validate({
        "role": {"code": "sjukskoterska", "name": "Sjuksköterska"},
        "unit": {"id": unit, "name": unit}, "organization": {"id": org, "name": org},
        "clients": ["lifecare"], "review_due": review_due.isoformat()})
    box = []

    async def work(conn):
        box.append((await admin.add_assignment(conn, user, record)).id)

    asyncio.run(_write(db_url, work))
    return box[0]


def decisions(html: str) -> list[str]:
    return re.findall(r'name="(decision:[^"]+)" value="confirm"', html)


def test_a_manager_confirms_and_ends_reviews_on_one_page(admin_broker):
    ab = admin_broker
    today = ab.today()
    keep = add_assignment(ab.db_url, "u-anna", "U-A1", today + timedelta(days=5))
    drop = add_assignment(ab.db_url, "u-fatima", "U-A2", today + timedelta(days=3))
    other = add_assignment(ab.db_url, "u-erik", "U-B1", today + timedelta(days=4), "5569876543")
    with admin_login(ab, MANAGER_A) as manager:
        page = manager.get("/admin/reviews")
        names = decisions(page.text)
        assert f"decision:u-anna:{keep}" in names and f"decision:u-fatima:{drop}" in names
        assert all(other not in n for n in names)  # another organisation's is not shown
        token = csrf(page.text)
        # A made-up key (another organisation's assignment) changes nothing at all.
        tampered = manager.post("/admin/reviews", data={
            "csrf": token, f"decision:u-anna:{keep}": "confirm",
            f"decision:u-erik:{other}": "end"})
        assert tampered.status_code == 403
        saved = manager.post("/admin/reviews", data={
            "csrf": token, f"decision:u-anna:{keep}": "confirm",
            f"decision:u-fatima:{drop}": "end"})
        assert saved.status_code == 303
        assert "1 bekräftade, 1 avslutade" in manager.get(saved.headers["location"]).text
    users = {u["id"]: u for u in USERS}
    assert users  # seeded

    async def check(conn):
        from broker.authz.sql import queries

        anna = await queries.user_where(conn, "id", "u-anna")
        fatima = await queries.user_where(conn, "id", "u-fatima")
        erik = await queries.user_where(conn, "id", "u-erik")
        confirmed = next(a for a in anna.assignments if a.id == keep)
        assert confirmed.review_due == today + timedelta(days=182)
        ended = next(a for a in fatima.assignments if a.id == drop)
        assert ended.valid_to == today - timedelta(days=1)
        untouched = next(a for a in erik.assignments if a.id == other)
        assert untouched.review_due == today + timedelta(days=4) and untouched.valid_to is None

    asyncio.run(_write(ab.db_url, check))
    actions = [e["action"] for e in ab.audit() if e.get("audit") == "admin_change"]
    assert actions == ["review_confirmed", "assignment_ended"]


def test_past_its_date_only_it_reinstates(admin_broker):
    ab = admin_broker
    gone = add_assignment(ab.db_url, "u-anna", "U-A1", ab.today() - timedelta(days=2))
    with admin_login(ab, MANAGER_A) as manager:
        page = manager.get("/admin/reviews")
        assert f"decision:u-anna:{gone}" not in page.text
        refused = manager.post("/admin/reviews", data={
            "csrf": csrf(page.text), f"decision:u-anna:{gone}": "confirm"})
        assert refused.status_code == 403
    with admin_login(ab, IT) as it:
        page = it.get("/admin/reviews")
        assert f"decision:u-anna:{gone}" in page.text
        assert it.post("/admin/reviews", data={"csrf": csrf(page.text),
                                               f"decision:u-anna:{gone}": "confirm"}
                       ).status_code == 303
        assert f"decision:u-anna:{gone}" not in it.get("/admin/reviews").text


def test_a_withdrawn_manager_loses_access_at_the_next_click(admin_broker):
    ab = admin_broker
    with admin_login(ab, MANAGER_A) as manager:
        assert manager.get("/admin/users").status_code == 200

        async def withdraw(conn):
            user = await admin.resolve_user(conn, "u-fatima")
            await access.end_assignment(conn, "u-fatima", user.assignments[0].id,
                                        date.today())

        asyncio.run(_write(ab.db_url, withdraw))
        denied = manager.get("/admin/users")
        assert denied.status_code == 403 and "saknar behörighet" in denied.text
        # The session is gone too: the next page asks for a login.
        assert manager.get("/admin/").status_code == 303


def test_cookies_headers_and_logout(admin_broker):
    ab = admin_broker
    with ab.client() as anonymous:
        first = anonymous.get("/admin/users")
        assert first.status_code == 303 and first.headers["location"].startswith("/admin/login")
        assert anonymous.post("/admin/requests", data={}).status_code == 403
        anonymous.cookies.set("broker_admin", "x" * 40)
        assert anonymous.get("/admin/").status_code == 303
        wrong_state = anonymous.get("/admin/callback?state=abc&code=def")
        assert wrong_state.status_code == 400
    with admin_login(ab, MANAGER_A) as manager:
        cookie = next(c for c in manager.cookies.jar if c.name == "broker_admin")
        assert cookie.has_nonstandard_attr("HttpOnly")
        page = manager.get("/admin/")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"
        assert "<script" not in page.text and "style=" not in page.text
        out = manager.post("/admin/logout", data={"csrf": csrf(page.text)})
        assert out.status_code == 303 and out.headers["location"].startswith("/logout?")
        assert manager.get(out.headers["location"]).status_code in (302, 303)
        assert manager.get("/admin/").status_code == 303


def test_https_cookies_are_host_prefixed(tmp_path, redis, sqlite_url):
    from admin_support import admin_config, seed

    from broker.app import create_app
    from broker.config import parse_settings
    from broker.store import open_store

    asyncio.run(seed(sqlite_url))
    data = admin_config("https://login.example", redis, tmp_path, sqlite_url, 25)
    data["clients"] = [{**c, "redirect_uris": [c["redirect_uris"][0]]} for c in data["clients"]]
    settings = parse_settings(data, str(tmp_path / "b.yaml"))
    app = create_app(settings, store=open_store(redis, settings.store.prefix),
                     allow_test_only=True)  # the simulator behind an https issuer

    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="https://login.example") as client:
            return await client.get("/admin/login")

    response = asyncio.run(go())
    assert response.status_code == 303
    assert response.headers["location"].startswith("/authorize?")
    assert "code_challenge_method=S256" in response.headers["location"]
    set_cookie = response.headers["set-cookie"]
    assert set_cookie.startswith("__Host-broker_admin_login=")
    for attribute in ("HttpOnly", "Secure", "SameSite=lax", "Path=/"):
        assert attribute in set_cookie
    assert "strict-transport-security" in response.headers


def test_it_edits_directly_and_conflicts_change_nothing(admin_broker):
    ab = admin_broker
    with admin_login(ab, IT) as it:
        page = it.get("/admin/users/u-fatima")
        token = csrf(page.text)
        taken = it.post("/admin/users/u-fatima", data={
            "csrf": token, "given_name": "Fatima", "family_name": "Ali",
            "email": "fatima@omsorg.example", "active": "yes", "account_lifecare": "anna.a"})
        assert taken.status_code == 409 and "already belongs to user u-anna" in taken.text
        bad = it.post("/admin/users/u-fatima", data={
            "csrf": token, "given_name": "Fatima", "email": "not-an-address", "active": "yes"})
        assert bad.status_code == 400
        ok = it.post("/admin/users/u-fatima", data={
            "csrf": token, "given_name": "Fatima", "family_name": "Ali",
            "email": "fatima@omsorg.example", "title": "Verksamhetschef", "active": "yes",
            "account_lifecare": "fatima.a", "account_mcss": "FAAL01"})
        assert ok.status_code == 303
        shown = it.get("/admin/users/u-fatima").text
        assert "Verksamhetschef" in shown and "FAAL01" in shown
    changes = [e for e in ab.audit() if e.get("action") == "user_changed"]
    assert len(changes) == 1
    assert changes[0]["before"].get("accounts") is None
    assert changes[0]["after"]["accounts"] == {"lifecare": "fatima.a", "mcss": "FAAL01"}


def test_bad_input_in_a_request_is_named_and_stores_nothing(admin_broker):
    ab = admin_broker
    with admin_login(ab, MANAGER_A) as manager:
        token = csrf(manager.get("/admin/requests/new").text)
        base = {"csrf": token, "given_name": "Maria", "family_name": "Johansson",
                "role_code": "underskoterska", "unit_id": "U-A1", "clients": ["lifecare"]}
        for extra, field in (({"personal_identity_number": "197003032386"}, "Personnummer"),
                             ({"hsa_id": "SE123-X"}, "HSA-id"),
                             ({"personal_identity_number": "197003032385",
                               "valid_to": "2001-01-01"}, "Sista dag"),
                             ({}, "Personnummer")):
            answer = manager.post("/admin/requests", data={**base, **extra})
            assert answer.status_code == 400 and field in answer.text, (extra, answer.text[-800:])
        assert "r-" not in manager.get("/admin/requests").text


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_an_outage_is_a_retryable_page_and_changes_nothing(admin_broker, request):
    """PostgreSQL refuses connections (and drops the open ones) for a while."""
    ab = admin_broker
    import asyncpg

    server = request.getfixturevalue("postgres_admin_url").replace("postgresql+asyncpg://",
                                                                   "postgresql://")
    name = ab.db_url.rsplit("/", 1)[1]

    async def allow(on: bool) -> None:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(on).lower()}')
            if not on:
                await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                   "WHERE datname = $1", name)
        finally:
            await conn.close()

    with admin_login(ab, MANAGER_A) as manager:
        token = csrf(manager.get("/admin/").text)
        asyncio.run(allow(False))
        try:
            page = manager.get("/admin/users")
            assert page.status_code == 503 and "Försök igen" in page.text
            posted = manager.post("/admin/requests", data={"csrf": token})
            assert posted.status_code == 503
        finally:
            asyncio.run(allow(True))
        assert manager.get("/admin/users").status_code == 200
    assert not [e for e in ab.audit() if e.get("audit") == "admin_change"]
    assert MANAGER_B and body
