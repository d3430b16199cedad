"""`broker authz requests|reviews`: the same requests, approvals and reviews for scripts,
with the same rules, audit and mail as the web app (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml
from admin_support import ORG_A, ORG_B, Outbox, admin_config, body, seed

from broker.admin.service import Actor, AdminService
from broker.audit import AuditLog
from broker.authz.cli import main
from broker.authz.sql.access import GrantRecord
from broker.authz.sql.engine import create_engine
from broker.config import load_settings
from tests.support.redis import free_port

GRANT = {"personal_identity_number": "197003032385", "given_name": "Maria",
         "family_name": "Johansson", "email": "maria@omsorg.example",
         "accounts": {"treserva": "MAJO01"}, "role_code": "underskoterska", "unit_id": "U-A2",
         "clients": ["lifecare"]}


@pytest.fixture
def config(db_url: str, smtp: Outbox, tmp_path: Path) -> Path:
    asyncio.run(seed(db_url))
    data = admin_config("http://127.0.0.1:8080", "memory://", tmp_path, db_url, smtp.port)
    data["store"] = {"url": "memory://"}
    path = tmp_path / "broker.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["authz", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def make_request(config: Path, organization: str = ORG_A, **grant) -> str:
    settings = load_settings(config)

    async def go() -> str:
        engine = create_engine(settings.authorization.url)
        try:
            service = AdminService(settings=settings.admin, issuer=settings.issuer,
                                   engine=engine, audit=AuditLog(settings.audit.target),
                                   mailer=None)
            outcome = await service.request_grant(
                Actor("u-fatima", "Fatima Ali", "fatima@omsorg.example", "en"), organization,
                GrantRecord.model_validate({**GRANT, **grant}))
            return outcome.value.id
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_requests_list_approve_reject(config: Path, smtp: Outbox, capsys) -> None:
    first = make_request(config)
    second = make_request(config, unit_id="U-A1", personal_identity_number="196004042393")
    code, out, _ = run(capsys, "requests", "list", "--config", str(config))
    assert code == 0 and first in out and second in out and "pending" in out
    code, out, _ = run(capsys, "requests", "list", "--config", str(config), "--json")
    listed = json.loads(out)
    assert {r["id"] for r in listed} == {first, second}
    assert all(r["payload"]["personal_identity_number"].endswith("****") for r in listed)

    code, out, err = run(capsys, "requests", "approve", first, "--config", str(config),
                         "--by", "lars")
    assert code == 0, err
    assert f"request {first} is approved" in out
    code, out, _ = run(capsys, "users", "show", "197003032385", "--config", str(config),
                       "--json")
    user = json.loads(out)
    assert user["accounts"] == {"treserva": "MAJO01"}
    assert user["assignments"][0]["unit"]["id"] == "U-A2"
    assert user["assignments"][0]["review_due"] == str(date.today() + timedelta(days=182))
    # The requester asked in English: the decision is in English.
    decided = smtp.wait_for("fatima@omsorg.example")
    assert decided[0]["Subject"] == "Your request has been approved"
    assert "approved" in body(decided[0])

    # Decided once: a second approval or a rejection is refused, nothing changes.
    code, _, err = run(capsys, "requests", "approve", first, "--config", str(config))
    assert code == 1 and "approved already" in err
    code, _, err = run(capsys, "requests", "reject", second, "--config", str(config),
                       "--reason", " ")
    assert code == 1 and "say why" in err
    code, out, err = run(capsys, "requests", "reject", second, "--config", str(config),
                         "--reason", "Fel enhet")
    assert code == 0 and "rejected" in out
    code, out, _ = run(capsys, "users", "show", "196004042393", "--config", str(config),
                       "--json")
    assert [a["role"]["code"] for a in json.loads(out)["assignments"]] == ["it-admin"]
    audit = [json.loads(x) for x in Path(load_settings(config).audit.target).read_text()
             .splitlines()]
    assert [e["action"] for e in audit if e.get("audit") == "admin_change"] == [
        "request_created", "request_created", "request_approved", "request_rejected"]
    assert next(e for e in audit if e.get("action") == "request_approved")["actor"] == \
        "cli:lars"


def test_approval_checks_the_organisation_again(config: Path, capsys) -> None:
    rid = make_request(config, organization=ORG_B, unit_id="U-B1")
    # IT has since removed lifecare from Vård AB's systems.
    data = yaml.safe_load(config.read_text())
    data["admin"]["organizations"][1]["clients"] = ["mcss"]
    data["clients"][1]["client_id"] = "mcss"
    config.write_text(yaml.safe_dump(data, allow_unicode=True))
    code, _, err = run(capsys, "requests", "approve", rid, "--config", str(config))
    assert code == 1 and "more than the organisation owns" in err and "lifecare" in err
    code, out, _ = run(capsys, "requests", "list", "--config", str(config))
    assert rid in out and "pending" in out


def test_reviews_due_and_remind_once(config: Path, smtp: Outbox, capsys, tmp_path) -> None:
    today = date.today()
    code, _, err = run(capsys, "assignments", "add", "u-anna", "--config", str(config),
                       "--role-code", "sjukskoterska", "--role-name", "Sjuksköterska",
                       "--unit-id", "U-A1", "--unit-name", "Hemtjänst Väster",
                       "--organization-id", ORG_A, "--organization-name", "Omsorg AB",
                       "--clients", "lifecare",
                       "--review-due", str(today + timedelta(days=10)))
    assert code == 0, err
    code, out, _ = run(capsys, "reviews", "due", "--config", str(config), "--json")
    due = json.loads(out)
    assert [(d["user_id"], d["review_due"]) for d in due] == [
        ("u-anna", str(today + timedelta(days=10)))]
    code, out, _ = run(capsys, "reviews", "due", "--config", str(config), "--within", "5")
    assert "no review dates in the next 5 days" in out

    code, out, err = run(capsys, "reviews", "remind", "--config", str(config))
    assert code == 0, err
    assert "reminded fatima@omsorg.example" in out
    mail = smtp.wait_for("fatima@omsorg.example")[0]
    assert "Anna Andersson" in body(mail) and "/admin/reviews" in body(mail)
    # The next day's run has nothing new to say.
    code, out, _ = run(capsys, "reviews", "remind", "--config", str(config))
    assert code == 0 and "no reviews to remind of" in out
    assert len(smtp.to("fatima@omsorg.example")) == 1

    # Past the date, unconfirmed: the assignment no longer counts; IT sees it as overdue.
    later = str(today + timedelta(days=11))
    code, out, _ = run(capsys, "reviews", "due", "--config", str(config), "--overdue",
                       "--date", later)
    assert "u-anna" in out and "sjukskoterska" in out


def test_remind_with_the_mail_server_down_is_retried(config: Path, capsys) -> None:
    data = yaml.safe_load(config.read_text())
    data["smtp"]["port"] = free_port()  # nothing listens there
    config.write_text(yaml.safe_dump(data, allow_unicode=True))
    run(capsys, "assignments", "add", "u-anna", "--config", str(config),
        "--role-code", "sjukskoterska", "--role-name", "Sjuksköterska", "--unit-id", "U-A1",
        "--unit-name", "Hemtjänst Väster", "--organization-id", ORG_A,
        "--organization-name", "Omsorg AB", "--clients", "lifecare",
        "--review-due", str(date.today() + timedelta(days=3)))
    code, _, err = run(capsys, "reviews", "remind", "--config", str(config))
    assert code == 1 and "not reminded: fatima@omsorg.example" in err
    code, _, err = run(capsys, "reviews", "remind", "--config", str(config))
    assert code == 1 and "fatima@omsorg.example" in err  # still due: not marked as sent


def test_decisions_need_the_admin_settings(sqlite_url: str, capsys) -> None:
    code, _, err = run(capsys, "requests", "approve", "r-1", "--database-url", sqlite_url)
    assert code == 1 and "needs --config" in err
