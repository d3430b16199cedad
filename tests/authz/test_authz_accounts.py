"""Per-system accounts, title and review dates in every source (file, SQL with its
migration, HTTP) and in CSV; the rules that come with them."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from authz_support import ANNA_PNR, USERS_YAML, Service, bankid
from sqlalchemy import text

from broker.authz import AuthorizationFileError, open_source
from broker.authz.csvio import parse_csv, write_csv
from broker.authz.records import UserRecord
from broker.authz.settings import AuthorizationSettings
from broker.authz.sql import admin, queries, schema
from broker.authz.sql.engine import create_engine
from broker.authz.yamlfile import parse_users

ANNA_EXTRA = USERS_YAML.replace(
    "    email: anna@example.se\n",
    "    email: anna@example.se\n    title: Sjuksköterska\n"
    "    accounts: {lifecare: anna.a, treserva: ANAN01}\n").replace(
    "        valid_to: 2027-12-31\n",
    "        valid_to: 2027-12-31\n        review_due: 2026-06-30\n", 1)


def test_file_carries_accounts_title_and_review_date() -> None:
    anna = parse_users(ANNA_EXTRA, "authz.yaml")[0]
    assert anna.title == "Sjuksköterska"
    assert anna.accounts == {"lifecare": "anna.a", "treserva": "ANAN01"}
    current = next(a for a in anna.assignments if a.review_due)
    assert current.review_due == date(2026, 6, 30)
    # Valid through the review date, not a day after it (unless confirmed).
    assert current.valid_for("lifecare", date(2026, 6, 30))
    assert not current.valid_for("lifecare", date(2026, 7, 1))
    assert anna.valid_assignments("lifecare", date(2026, 7, 1)) == []


@pytest.mark.parametrize(("change", "expected"), [
    ("accounts: {Lifecare: anna.a}", "line 8: users[0].accounts.Lifecare"),
    ("accounts: {lifecare: \"anna\\na\"}", "control characters"),
    ("accounts: {lifecare: \"\"}", "users[0].accounts.lifecare"),
])
def test_file_rejects_bad_accounts_naming_line_and_key(change: str, expected: str) -> None:
    text_ = USERS_YAML.replace("    email: anna@example.se\n",
                               f"    email: anna@example.se\n    {change}\n")
    with pytest.raises(AuthorizationFileError) as err:
        parse_users(text_, "authz.yaml")
    assert expected in str(err.value)


def test_one_user_name_in_a_system_is_one_persons() -> None:
    text_ = ANNA_EXTRA.replace("    given_name: Bo\n",
                               "    given_name: Bo\n    accounts: {lifecare: anna.a}\n")
    with pytest.raises(AuthorizationFileError, match=r"users\[1\].accounts.lifecare: the same "
                                                     r"user name as users\[0\]"):
        parse_users(text_, "authz.yaml")


async def test_sql_migration_keeps_data_and_adds_accounts(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        first = schema.MIGRATIONS[0]
        async with engine.begin() as conn:
            # A database at version 1, with a user, as the previous release left it.
            await conn.execute(text(schema._VERSION_DDL))
            for statement in first.statements:
                await conn.execute(text(statement))
            await conn.execute(schema.schema_version.insert().values(
                version=1, description=first.description, applied_at=schema.now()))
            await conn.execute(text(
                "INSERT INTO users (id, personal_identity_number, active, created_at, "
                "updated_at) VALUES ('u-old', :pnr, TRUE, :t, :t)"),
                {"pnr": ANNA_PNR, "t": schema.now()})
        async with engine.begin() as conn:
            assert [m.version for m in await schema.migrate(conn)] == [2]
        async with engine.begin() as conn:
            old = await queries.user_where(conn, "id", "u-old")
            assert old.accounts == {} and old.title is None
            await admin.add_user(conn, UserRecord.model_validate({
                "id": "u-new", "hsa_id": "SE2321000016-9999", "title": "Enhetschef",
                "accounts": {"lifecare": "new.one", "mcss": "NEON01"}}))
        async with engine.begin() as conn:
            with pytest.raises(admin.AdminError, match=r"accounts\.lifecare: the user name "
                                                       r"new\.one already belongs to user u-new"):
                await admin.set_accounts(conn, "u-old", {"lifecare": "new.one"})
        async with engine.connect() as conn:
            new = await queries.user_where(conn, "id", "u-new")
            assert new.accounts == {"lifecare": "new.one", "mcss": "NEON01"}
            assert new.title == "Enhetschef"
            assert (await queries.user_where(conn, "id", "u-old")).accounts == {}
    finally:
        await engine.dispose()
    source = open_source(AuthorizationSettings(source="sql", url=db_url), Path.cwd())
    try:
        assert (await source.find_user(bankid())).id == "u-old"
    finally:
        await source.aclose()


async def test_http_source_carries_them(http_service: Service) -> None:
    http_service.users = [{"id": "u-anna", "personal_identity_number": ANNA_PNR,
                           "title": "Sjuksköterska", "accounts": {"lifecare": "anna.a"},
                           "assignments": [{"role": {"code": "ssk", "name": "Ssk"},
                                            "unit": {"id": "U1", "name": "U1"},
                                            "organization": {"id": "O", "name": "O"},
                                            "clients": ["lifecare"],
                                            "review_due": "2026-06-30"}]}]
    source = open_source(AuthorizationSettings(source="http", url=http_service.url),
                         Path.cwd())
    try:
        anna = await source.find_user(bankid())
    finally:
        await source.aclose()
    assert anna.accounts == {"lifecare": "anna.a"} and anna.title == "Sjuksköterska"
    assert anna.assignments[0].review_due == date(2026, 6, 30)


async def test_csv_round_trip_and_columns_an_older_file_lacks(db_url: str) -> None:
    users = parse_users(ANNA_EXTRA, "authz.yaml")
    exported = write_csv(users)
    assert "title,accounts" in exported.splitlines()[0]
    assert "lifecare=anna.a;treserva=ANAN01" in exported and "2026-06-30" in exported
    rows = parse_csv(exported)
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await schema.migrate(conn)
            await admin.import_users(conn, rows)
        async with engine.connect() as conn:
            again = write_csv(await queries.all_users(conn))
        assert sorted(again.splitlines()) == sorted(exported.splitlines())
        # A file from an HR system that knows nothing of accounts, titles or reviews.
        older = "\n".join(",".join(c for c in line.split(",")[:7] + line.split(",")[9:-1])
                          for line in exported.splitlines())
        async with engine.begin() as conn:
            await admin.import_users(conn, parse_csv(older))
        async with engine.connect() as conn:
            anna = await queries.user_where(conn, "id", "u-anna")
        assert anna.accounts == {"lifecare": "anna.a", "treserva": "ANAN01"}
        assert anna.title == "Sjuksköterska"
        assert any(a.review_due == date(2026, 6, 30) for a in anna.assignments)
    finally:
        await engine.dispose()
    bad = exported.replace("lifecare=anna.a;treserva=ANAN01", "lifecare")
    with pytest.raises(Exception, match="accounts: write system=user name"):
        parse_csv(bad)
    assert json.dumps  # keep the import list honest


def test_cli_users_add_with_title_and_accounts(db_url: str, capsys) -> None:
    from broker.authz.cli import main

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(["authz", *argv, "--database-url", db_url])
        out = capsys.readouterr()
        return code, out.out, out.err

    assert run("migrate")[0] == 0
    code, _, err = run("users", "add", "--id", "u-anna", "--personal-number", ANNA_PNR,
                       "--title", "Sjuksköterska", "--account", "lifecare=anna.a",
                       "--account", "treserva=ANAN01")
    assert code == 0, err
    code, out, _ = run("users", "show", "u-anna")
    assert "Title:                    Sjuksköterska" in out
    assert "lifecare: anna.a, treserva: ANAN01" in out
    code, _, err = run("users", "add", "--hsa-id", "SE2321000016-7777",
                       "--account", "lifecare=anna.a")
    assert code == 1 and "already belongs to user u-anna" in err
    code, _, err = run("users", "add", "--hsa-id", "SE2321000016-7777", "--account", "lifecare")
    assert code == 1 and "--account: write system=user name" in err
    code, _, err = run("users", "add", "--hsa-id", "SE2321000016-7777",
                       "--account", "Life Care=x")
    assert code == 1 and "--accounts" in err and "system name" in err
