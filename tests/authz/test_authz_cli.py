"""`broker authz ...` round trips against real databases, and refusals of bad input."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from authz_support import ANNA_HSA, ANNA_PNR, USERS_YAML, bankid, siths

from broker.authz import open_source
from broker.authz.cli import main
from broker.authz.settings import AuthorizationSettings

BO_PNR = "198112289874"


class Cli:
    def __init__(self, url: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.url = url
        self.capsys = capsys

    def __call__(self, *args: str, db: bool = True) -> tuple[int, str, str]:
        argv = ["authz", *args, *(["--database-url", self.url] if db else [])]
        self.capsys.readouterr()
        code = main(argv)
        out, err = self.capsys.readouterr()
        return code, out, err

    def ok(self, *args: str) -> str:
        code, out, err = self(*args)
        assert code == 0, err
        return out

    def json(self, *args: str) -> object:
        return json.loads(self.ok(*args, "--json"))


@pytest.fixture
def cli(db_url: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    runner = Cli(db_url, capsys)
    assert "version 2" in runner.ok("migrate")
    return runner


@pytest.fixture
def sqlite_cli(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    runner = Cli(sqlite_url, capsys)
    runner.ok("migrate")
    return runner


ASSIGNMENT = ["--role-code", "sjukskoterska", "--role-name", "Sjuksköterska",
              "--unit-id", "SE2321000016-ABCD", "--unit-name", "Hemsjukvården Norr",
              "--organization-id", "2120001234", "--organization-name", "Exempel kommun",
              "--clients", "lifecare,mcss"]


def find(url: str, identity: object) -> object:
    async def go() -> object:
        source = open_source(AuthorizationSettings(source="sql", url=url), Path.cwd())
        try:
            return await source.find_user(identity)
        finally:
            await source.aclose()

    return asyncio.run(go())


def test_users_and_assignments_round_trip(cli: Cli) -> None:
    assert "already at version 2" in cli.ok("migrate")
    out = cli.ok("users", "add", "--personal-number", "19900101-2385", "--hsa-id",
                 ANNA_HSA.lower(), "--given-name", "Anna", "--family-name", "Andersson",
                 "--email", "anna@example.se", "--id", "u-anna")
    assert out.strip() == "added user u-anna"
    added = cli.json("assignments", "add", ANNA_PNR, *ASSIGNMENT, "--valid-from", "2024-01-01",
                     "--valid-to", "2099-12-31", "--username", "anna.a")
    cli.ok("assignments", "add", ANNA_HSA, "--role-code", "chef", "--role-name", "Chef",
           "--unit-id", "U2", "--unit-name", "Hemtjänsten", "--organization-id", "2120001234",
           "--organization-name", "Exempel kommun", "--clients", "lifecare",
           "--valid-to", "2020-01-01")
    bo = cli.json("users", "add", "--personal-number", BO_PNR, "--given-name", "Bo")
    assert bo["id"].startswith("u-") and bo["personal_identity_number"] == "19811228****"

    listing = cli.ok("users", "list")
    assert "19900101****" in listing and ANNA_PNR not in listing and BO_PNR not in listing
    assert "Anna Andersson" in listing and "1/2" in listing  # one of two assignments valid
    as_json = cli.json("users", "list")
    assert {u["personal_identity_number"] for u in as_json} == {"19900101****", "19811228****"}

    shown = cli.ok("users", "show", "u-anna")
    assert ANNA_PNR in shown and "[valid]" in shown and "[expired]" in shown
    assert "username:     anna.a" in shown
    record = cli.json("users", "show", ANNA_HSA)
    assert record["personal_identity_number"] == ANNA_PNR
    assert {a["role"]["code"] for a in record["assignments"]} == {"sjukskoterska", "chef"}

    # The source sees what the CLI wrote: one user by BankID and by SITHS.
    user = find(cli.url, bankid())
    assert user.id == find(cli.url, siths()).id == "u-anna"
    assert [a.id for a in user.valid_assignments("mcss", __import__("datetime").date.today())] \
        == [added["id"]]

    assert "disabled" in cli.ok("users", "disable", "u-anna")
    assert find(cli.url, bankid()).active is False
    assert "disabled" in cli.ok("users", "list")
    cli.ok("users", "enable", ANNA_PNR)
    assert find(cli.url, bankid()).active is True

    cli.ok("assignments", "remove", "u-anna", added["id"])
    assert [a["role"]["code"] for a in cli.json("users", "show", "u-anna")["assignments"]] \
        == ["chef"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["users", "add", "--personal-number", "199001012384"], "--personal-number: the personal "
         "identity number's check digit is wrong"),
        (["users", "add", "--personal-number", "19901301238"], "--personal-number: a personal "
         "identity number has 12 digits"),
        (["users", "add", "--personal-number", "199013012385"], "does not start with a real date"),
        (["users", "add", "--hsa-id", "SE232-1"], "--hsa-id: an HSA-id looks like"),
        (["users", "add", "--given-name", "Nobody"], "needs personal_identity_number or hsa_id"),
        (["users", "add", "--hsa-id", ANNA_HSA, "--email", "not-mail"], "--email: is not an e-mail"),
        (["assignments", "add", "u-anna", *ASSIGNMENT, "--valid-from", "2024-13-01"],
         "--valid-from: Input should be a valid date"),
        (["assignments", "add", "u-anna", *ASSIGNMENT, "--valid-from", "2025-01-01",
          "--valid-to", "2024-01-01"], "valid_to is before valid_from"),
        (["assignments", "add", "u-nobody", *ASSIGNMENT], "no user with this id: u-nobody"),
        (["assignments", "add", BO_PNR, *ASSIGNMENT], "no user with this personal identity "
         "number: (not shown)"),
        (["assignments", "remove", "u-anna", "a-nope"], "user u-anna has no assignment a-nope"),
        (["users", "show", "u-nobody"], "no user with this id"),
        (["users", "disable", "SE2321000016-0000"], "no user with this hsa id"),
        (["users", "add", "--hsa-id", ANNA_HSA.lower()], "hsa_id: already belongs to user u-anna"),
        (["users", "add", "--id", "u-anna", "--hsa-id", "SE2321000016-9"], "user id u-anna is taken"),
        (["users", "add", "--id", "bad id!", "--hsa-id", "SE2321000016-9"], "--id: an id has"),
    ],
)
def test_bad_input_is_refused_and_nothing_written(sqlite_cli: Cli, args: list[str],
                                                  message: str) -> None:
    sqlite_cli.ok("users", "add", "--id", "u-anna", "--hsa-id", ANNA_HSA)
    before = sqlite_cli.ok("users", "show", "u-anna", "--json")
    count = len(sqlite_cli.json("users", "list"))
    code, out, err = sqlite_cli(*args)
    assert code == 1
    assert message in err
    assert "Traceback" not in err and out == ""
    assert "199001012384" not in err
    assert sqlite_cli.ok("users", "show", "u-anna", "--json") == before
    assert len(sqlite_cli.json("users", "list")) == count


CSV = f"""\
personal_identity_number,hsa_id,given_name,family_name,email,role_code,role_name,unit_id,\
unit_name,organization_id,organization_name,clients,valid_from,valid_to,username
{ANNA_PNR},{ANNA_HSA},Anna,Andersson,anna@example.se,sjukskoterska,Sjuksköterska,U1,\
Hemsjukvården Norr,2120001234,Exempel kommun,lifecare;mcss,2024-01-01,2099-12-31,anna.a
{ANNA_PNR},{ANNA_HSA},Anna,Andersson,anna@example.se,chef,Enhetschef,U2,Hemtjänsten,\
2120001234,Exempel kommun,lifecare,,,
{BO_PNR},,Bo,Berg,,handlaggare,Handläggare,U3,Biståndsenheten,2120001234,Exempel kommun,\
mcss,,,bo.b
,SE2321000016-7777,Cecilia,Carlsson,,,,,,,,,,,
"""


def test_csv_import_export_round_trip(cli: Cli, tmp_path: Path, sqlite_url: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "staff.csv"
    path.write_text("\ufeff" + CSV, encoding="utf-8")  # as Excel saves "CSV UTF-8"
    summary = cli.json("import", str(path))
    assert summary == {"created": 3, "updated": 0, "assignments": 3, "written": True}
    users = {u["given_name"]: u for u in cli.json("users", "list")}
    assert len(users["Anna"]["assignments"]) == 2 and users["Cecilia"]["assignments"] == []
    assert find(cli.url, siths()).id == find(cli.url, bankid()).id == users["Anna"]["id"]

    exported = tmp_path / "export.csv"
    cli.ok("export", str(exported))
    # Into another database (SQLite here), then out again: the same file.
    other = Cli(sqlite_url if sqlite_url != cli.url else sqlite_url + "2", capsys)
    other.ok("migrate")
    other.ok("import", str(exported))
    again = tmp_path / "again.csv"
    other.ok("export", str(again))
    assert again.read_text() == exported.read_text()
    assert ANNA_PNR in exported.read_text()

    # Importing again replaces the named users' assignments; ids are kept.
    changed = CSV.replace("2099-12-31", "2030-06-30").replace(
        f"{BO_PNR},,Bo,Berg,,handlaggare", f"{BO_PNR},,Bo,Berg,bo@example.se,handlaggare")
    path.write_text(changed, encoding="utf-8")
    assert cli.json("import", str(path))["updated"] == 3
    after = {u["given_name"]: u for u in cli.json("users", "list")}
    assert {k: v["id"] for k, v in after.items()} == {k: v["id"] for k, v in users.items()}
    assert after["Bo"]["email"] == "bo@example.se"
    assert "2030-06-30" in json.dumps(after["Anna"])


def test_csv_with_bad_rows_writes_nothing_and_lists_every_line(sqlite_cli: Cli,
                                                              tmp_path: Path) -> None:
    bad = CSV.replace(f"{BO_PNR},,Bo", "198112289875,,Bo").replace(
        "2120001234,Exempel kommun,lifecare,,,", "2120001234,Exempel kommun,lifecare,2024-02-30,,")
    bad += ",SE23-1,Dora,Dahl,,,,,,,,,,,\n"
    bad += f"{BO_PNR},,Erik,Ek,,ssk,Ssk,U1,Unit,1,Org,,,,\n"
    path = tmp_path / "bad.csv"
    path.write_text(bad, encoding="utf-8")
    code, _, err = sqlite_cli("import", str(path))
    assert code == 1
    assert "line 3: valid_from: Input should be a valid date" in err
    assert "line 4: personal_identity_number: the personal identity number's check digit" in err
    assert "line 6: hsa_id: an HSA-id looks like" in err
    assert "line 7: clients:" in err
    assert "nothing was imported" in err
    assert "198112289875" not in err
    assert sqlite_cli.json("users", "list") == []


def test_csv_conflict_with_the_database_writes_nothing(sqlite_cli: Cli, tmp_path: Path) -> None:
    sqlite_cli.ok("users", "add", "--id", "u-x", "--hsa-id", "SE2321000016-7777")
    # Within the file: two users with one HSA-id.
    conflicting = CSV.replace(f"{BO_PNR},,Bo", f"{BO_PNR},SE2321000016-7777,Bo")
    path = tmp_path / "c.csv"
    path.write_text(conflicting, encoding="utf-8")
    code, _, err = sqlite_cli("import", str(path))
    assert code == 1
    assert "line 5: hsa_id: the same as another user's on line 4" in err
    # Against the database: Bo, found as u-y by personal number, claims u-x's HSA-id.
    sqlite_cli.ok("users", "add", "--id", "u-y", "--personal-number", BO_PNR)
    path.write_text(CSV.split("\n,SE2321000016-7777")[0].replace(
        f"{BO_PNR},,Bo", f"{BO_PNR},SE2321000016-7777,Bo") + "\n", encoding="utf-8")
    code, _, err = sqlite_cli("import", str(path))
    assert code == 1 and "line 4: hsa_id: already belongs to user u-x" in err
    assert sorted(u["id"] for u in sqlite_cli.json("users", "list")) == ["u-x", "u-y"]
    assert sqlite_cli.json("users", "show", "u-y")["assignments"] == []


def test_csv_dry_run_and_header_errors(sqlite_cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(CSV, encoding="utf-8")
    assert "dry run: nothing written" in sqlite_cli.ok("import", str(path), "--dry-run")
    assert sqlite_cli.json("users", "list") == []
    path.write_text("personnummer,name\n1,2\n", encoding="utf-8")
    code, _, err = sqlite_cli("import", str(path))
    assert code == 1 and "line 1: unknown column 'personnummer'" in err
    semicolons = tmp_path / "semi.csv"
    semicolons.write_text(CSV.replace(",", ";").replace("lifecare;mcss", "lifecare mcss"),
                          encoding="utf-8")
    assert sqlite_cli.json("import", str(semicolons), "--delimiter", ";")["created"] == 3


def test_database_choice(tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
                         ) -> None:
    config = tmp_path / "broker.yaml"
    config.write_text("issuer: https://login.example.se\n"
                      "authorization: {source: sql, url: 'sqlite+aiosqlite:///rel.db'}\n")
    assert main(["authz", "migrate", "--config", str(config)]) == 0
    assert (tmp_path / "rel.db").exists()  # relative to the config file
    assert main(["authz", "users", "add", "--hsa-id", ANNA_HSA, "--config", str(config)]) == 0
    capsys.readouterr()
    filecfg = tmp_path / "file.yaml"
    filecfg.write_text("issuer: https://login.example.se\n"
                       "authorization: {source: file, path: a.yaml}\n")
    assert main(["authz", "users", "list", "--config", str(filecfg)]) == 1
    assert "these commands manage a 'sql' source" in capsys.readouterr().err
    assert main(["authz", "users", "list"]) == 1
    assert "--config FILE or --database-url URL" in capsys.readouterr().err
    assert main(["authz", "users", "list", "--database-url", sqlite_url]) == 1
    assert "run `broker authz migrate`" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["authz", "users", "list", "--config", str(config), "--database-url", sqlite_url])
    assert usage.value.code == 2


def test_check_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "authz.yaml"
    good.write_text(USERS_YAML, encoding="utf-8")
    assert main(["authz", "check-file", str(good)]) == 0
    assert "ok, 2 users, 3 assignments" in capsys.readouterr().out
    good.write_text(USERS_YAML.replace("clients: [lifecare]\n", "clients: []\n"),
                    encoding="utf-8")
    assert main(["authz", "check-file", str(good)]) == 1
    assert "line 19: users[0].assignments[1].clients" in capsys.readouterr().err


def test_standalone_module(sqlite_url: str) -> None:
    run = subprocess.run([sys.executable, "-m", "broker.authz.cli", "authz", "migrate",
                          "--database-url", sqlite_url, "--json"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"version": 2, "applied": [1, 2]}
    run = subprocess.run([sys.executable, "-m", "broker.authz.cli", "authz", "users", "show",
                          "x"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "--database-url" in run.stderr
