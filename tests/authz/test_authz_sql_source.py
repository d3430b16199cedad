"""The SQL source against real SQLite files and a real PostgreSQL server."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import asyncpg
import pytest
from authz_support import ANNA_HSA, ANNA_PNR, bankid, free_port, siths
from sqlalchemy import text

from broker.authz import AuthorizationSourceError, open_source
from broker.authz.records import AssignmentRecord, UserRecord
from broker.authz.settings import AuthorizationSettings
from broker.authz.sql import SqlSource, admin, schema
from broker.authz.sql.engine import create_engine

ANNA = {
    "id": "u-anna",
    "personal_identity_number": ANNA_PNR,
    "hsa_id": ANNA_HSA,
    "given_name": "Anna",
    "family_name": "Andersson",
    "assignments": [
        {"role": {"code": "ssk", "name": "Sjuksköterska"},
         "unit": {"id": "U1", "name": "Hemsjukvården Norr"},
         "organization": {"id": "2120001234", "name": "Exempel kommun"},
         "clients": ["lifecare", "mcss"], "valid_from": "2024-01-01", "valid_to": "2027-12-31",
         "username": "anna.a", "extra": {"title": "leg. ssk"}},
        {"role": {"code": "chef", "name": "Enhetschef"},
         "unit": {"id": "U2", "name": "Hemtjänsten"},
         "organization": {"id": "2120001234", "name": "Exempel kommun"},
         "clients": ["lifecare"], "valid_to": "2020-12-31"},
    ],
}


async def seeded(url: str, **options: object) -> SqlSource:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await schema.migrate(conn)
        await admin.add_user(conn, UserRecord.model_validate(ANNA))
    await engine.dispose()
    return open_source(AuthorizationSettings(source="sql", url=url, **options), Path.cwd())


async def test_lookups_by_personal_number_and_hsa_id(db_url: str) -> None:
    source = await seeded(db_url)
    try:
        by_pnr = await source.find_user(bankid())
        by_hsa = await source.find_user(siths(ANNA_HSA.lower()))
        assert by_pnr == by_hsa
        assert by_pnr.id == "u-anna" and by_pnr.personal_identity_number == ANNA_PNR
        current, expired = sorted(by_pnr.assignments, key=lambda a: a.role.id != "ssk")
        assert current.clients == frozenset({"lifecare", "mcss"})
        assert current.valid_from == date(2024, 1, 1)
        assert current.extra == {"title": "leg. ssk", "username": "anna.a"}
        assert by_pnr.valid_assignments("lifecare", date(2025, 1, 1)) == [current]
        assert expired.valid_for("lifecare", date(2025, 1, 1)) is False
        assert (await source.get_user("u-anna")) == by_pnr
        assert await source.get_user("u-nobody") is None
        assert await source.find_user(bankid("198112289874")) is None
        await source.ping()
    finally:
        await source.aclose()


async def test_disabled_user_has_no_valid_assignments(db_url: str) -> None:
    source = await seeded(db_url)
    try:
        async with source.engine.begin() as conn:
            await admin.set_active(conn, "u-anna", False)
        user = await source.find_user(bankid())
        assert user is not None and user.active is False
        assert user.valid_assignments("lifecare", date(2025, 1, 1)) == []
    finally:
        await source.aclose()


async def test_unmigrated_database_is_a_clear_error(db_url: str) -> None:
    source = open_source(AuthorizationSettings(source="sql", url=db_url), Path.cwd())
    try:
        with pytest.raises(AuthorizationSourceError, match="run `broker authz migrate`"):
            await source.find_user(bankid())
    finally:
        await source.aclose()


async def test_auto_migrate(db_url: str) -> None:
    source = open_source(AuthorizationSettings(source="sql", url=db_url, auto_migrate=True),
                         Path.cwd())
    try:
        assert await source.find_user(bankid()) is None
        async with source.engine.connect() as conn:
            assert await schema.current_version(conn) == schema.LATEST
    finally:
        await source.aclose()


async def test_migrations_are_idempotent_and_all_or_nothing(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            assert [m.version for m in await schema.migrate(conn)] == [1, 2]
        async with engine.begin() as conn:
            assert await schema.migrate(conn) == []
        broken = schema.Migration(3, "broken", ("CREATE TABLE half (a INTEGER)", "NOT SQL"))
        monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, broken))
        monkeypatch.setattr(schema, "LATEST", 3)
        with pytest.raises(Exception, match=r"(?i)syntax"):
            async with engine.begin() as conn:
                await schema.migrate(conn)
        async with engine.connect() as conn:
            assert await schema.current_version(conn) == 2
            exists = await conn.run_sync(lambda c: c.dialect.has_table(c, "half"))
            assert not exists  # the DDL of the failed step was rolled back too
    finally:
        await engine.dispose()


async def test_admin_rejects_conflicts(db_url: str) -> None:
    source = await seeded(db_url)
    try:
        async with source.engine.begin() as conn:
            with pytest.raises(admin.AdminError, match="already belongs to user u-anna"):
                await admin.add_user(conn, UserRecord.model_validate(
                    {"id": "u-other", "hsa_id": ANNA_HSA}))
            with pytest.raises(admin.AdminError, match="already has assignment"):
                await admin.add_assignment(conn, ANNA_PNR, AssignmentRecord.model_validate(
                    {**ANNA["assignments"][0], "valid_to": None}))
            with pytest.raises(admin.AdminError, match="no assignment a-x"):
                await admin.remove_assignment(conn, "u-anna", "a-x")
    finally:
        await source.aclose()


async def test_unreachable_database_fails_closed() -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/none"
    source = open_source(AuthorizationSettings(source="sql", url=url, timeout=2), Path.cwd())
    try:
        with pytest.raises(AuthorizationSourceError, match="authorization database"):
            await source.find_user(bankid())
        with pytest.raises(AuthorizationSourceError):
            await source.ping()
    finally:
        await source.aclose()


async def test_slow_database_times_out(pg_url: str) -> None:
    source = await seeded(pg_url, timeout=0.5)
    await source.ping()  # schema checked, pool warm
    locker = await asyncpg.connect("postgresql://" + pg_url.split("://", 1)[1])
    try:
        tx = locker.transaction()
        await tx.start()
        await locker.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        started = asyncio.get_running_loop().time()
        with pytest.raises(AuthorizationSourceError, match=r"did not answer within 0\.5 s"):
            await source.find_user(bankid())
        assert asyncio.get_running_loop().time() - started < 2.0
        await tx.rollback()
        # Once the lock is gone the source answers again.
        assert (await source.find_user(bankid())).id == "u-anna"
    finally:
        await locker.close()
        await source.aclose()


async def test_personal_numbers_do_not_reach_error_messages(sqlite_url: str) -> None:
    source = await seeded(sqlite_url)
    try:
        async with source.engine.begin() as conn:
            await conn.execute(text("DROP TABLE assignments"))
            await conn.execute(text("DROP TABLE users"))
        with pytest.raises(AuthorizationSourceError) as err:
            await source.find_user(bankid())
        chain = f"{err.value} {err.value.__cause__}"
        assert ANNA_PNR not in chain
        assert "hidden" in str(err.value.__cause__)
    finally:
        await source.aclose()
