"""The admin app over HTTP: provider requests, IT approval, the new person's login with
their Lifecare user name in the ID token, cross-organisation refusals, CSRF, rejection and
the review date ending an assignment. SQLite and PostgreSQL both (db_url)."""

from __future__ import annotations

import re
import secrets

from admin_support import (
    IT,
    LIFECARE_REDIRECT,
    MANAGER_A,
    MANAGER_B,
    NEW_PERSON,
    ORG_A,
    admin_login,
    bankid_login,
    body,
    csrf,
    days,
)

from tests.support.rp import FakeRP


def request_new_person(client, **overrides):
    form = client.get("/admin/requests/new")
    assert form.status_code == 200, form.text[:500]
    data = {"csrf": csrf(form.text), "given_name": "Maria", "family_name": "Johansson",
            "personal_identity_number": NEW_PERSON, "email": "maria@omsorg.example",
            "title": "Undersköterska", "account_treserva": "MAJO01",
            "account_lifecare": "maria.j", "role_code": "underskoterska", "unit_id": "U-A2",
            "clients": ["lifecare", "mcss"]}
    data.update(overrides)
    return client.post("/admin/requests", data=data)


def request_id(response) -> str:
    assert response.status_code == 303, response.text[:800]
    return re.search(r"/admin/requests/(r-[0-9a-f]+)", response.headers["location"]).group(1)


def lifecare_login(ab, pnr):
    rp = FakeRP(ab.issuer, "lifecare", LIFECARE_REDIRECT, "l" * 32)
    with ab.client() as browser:
        params = rp.params()
        from urllib.parse import urlencode

        done = bankid_login(browser, pnr, "/authorize?" + urlencode(params))
    return rp, done


def test_request_approve_and_login_with_the_lifecare_user_name(admin_broker):
    ab = admin_broker
    with admin_login(ab, MANAGER_A) as manager:
        rid = request_id(request_new_person(manager))
        page = manager.get(f"/admin/requests/{rid}")
        assert "Väntar" in page.text and "Maria" in page.text
        # The manager sees the personal number masked only.
        assert NEW_PERSON not in page.text and "19700303****" in page.text
    # Municipal IT got the request by mail.
    announced = ab.smtp.wait_for("behorighet@kommun.example")
    assert rid in body(announced[0]) and "Omsorg AB" in body(announced[0])

    with admin_login(ab, IT) as it:
        page = it.get(f"/admin/requests/{rid}")
        assert NEW_PERSON in page.text  # IT checks the whole number against the SITHS order
        approved = it.post(f"/admin/requests/{rid}/approve", data={"csrf": csrf(page.text)})
        assert approved.status_code == 303
        assert "Godkänd" in it.get(approved.headers["location"]).text

    decided = ab.smtp.wait_for("fatima@omsorg.example")
    assert "godkänts" in decided[0]["Subject"]
    welcome = ab.smtp.wait_for("maria@omsorg.example")
    assert "Lifecare" in body(welcome[0]) or "lifecare" in body(welcome[0])

    rp, done = lifecare_login(ab, NEW_PERSON)
    code = rp.callback(done)["code"]
    claims = rp.verify(rp.token(code).json()["id_token"])
    assert claims["preferred_username"] == "maria.j"
    assert claims["roleCode"] == "underskoterska" and claims["unitId"] == "U-A2"
    assert "user.accounts.lifecare" not in claims and "email" not in claims
    # Every change is audited with who, what, before and after.
    change = next(e for e in ab.audit() if e.get("action") == "request_approved")
    assert change["actor"] == "u-lars" and change.get("before") is None  # a new person
    assert change["after"]["accounts"] == {"lifecare": "maria.j", "treserva": "MAJO01"}
    assert change["after"]["assignments"][0]["review_due"] == str(ab.today() + days(182))


def test_a_manager_of_another_organisation_cannot_see_or_request(admin_broker):
    ab = admin_broker
    with admin_login(ab, MANAGER_B) as other:
        assert other.get("/admin/users/u-anna").status_code == 403
        listed = other.get("/admin/users")
        assert "Anna" not in listed.text
        token = csrf(other.get("/admin/").text)
        before = ab.audit()
        for response in (
            other.post("/admin/requests", data={"csrf": token, "user_id": "u-anna",
                                                "role_code": "underskoterska",
                                                "unit_id": "U-B1", "clients": ["lifecare"]}),
            other.post("/admin/users/u-anna/assignments/a-anna/end", data={"csrf": token}),
            # Not even a unit of another organisation for a new person.
            request_new_person(other, unit_id="U-A1"),
            # Nor a system the organisation has no access to.
            request_new_person(other, unit_id="U-B1", clients=["mcss"]),
        ):
            assert response.status_code == 403, response.text[:300]
        assert other.get("/admin/requests").text.count("r-") == 0
        # A request of another organisation is not visible either.
    with admin_login(ab, MANAGER_A) as manager:
        rid = request_id(request_new_person(manager))
    with admin_login(ab, MANAGER_B) as other:
        assert other.get(f"/admin/requests/{rid}").status_code == 403
    changes = [e for e in ab.audit()[len(before):] if e.get("audit") == "admin_change"]
    assert [e["actor"] for e in changes] == ["u-fatima"]  # only manager A's own request


def test_a_manager_cannot_approve_and_forms_need_the_csrf_token(admin_broker):
    ab = admin_broker
    with admin_login(ab, MANAGER_A) as manager:
        rid = request_id(request_new_person(manager))
        token = csrf(manager.get("/admin/").text)
        assert manager.post(f"/admin/requests/{rid}/approve",
                            data={"csrf": token}).status_code == 403
    with admin_login(ab, IT) as it:
        assert it.post(f"/admin/requests/{rid}/approve", data={}).status_code == 403
        assert it.post(f"/admin/requests/{rid}/approve",
                       data={"csrf": secrets.token_hex(20)}).status_code == 403
        assert "Väntar" in it.get(f"/admin/requests/{rid}").text


def test_a_rejected_request_grants_nothing(admin_broker):
    ab = admin_broker
    with admin_login(ab, MANAGER_A) as manager:
        rid = request_id(request_new_person(manager))
    with admin_login(ab, IT) as it:
        page = it.get(f"/admin/requests/{rid}")
        empty = it.post(f"/admin/requests/{rid}/reject", data={"csrf": csrf(page.text)})
        assert empty.status_code == 400  # a rejection says why
        rejected = it.post(f"/admin/requests/{rid}/reject",
                           data={"csrf": csrf(page.text), "reason": "Fel enhet"})
        assert rejected.status_code == 303
        again = it.post(f"/admin/requests/{rid}/approve", data={"csrf": csrf(page.text)})
        assert again.status_code == 409 and "rejected already" in again.text
    mail = ab.smtp.wait_for("fatima@omsorg.example")
    assert "avslagits" in mail[0]["Subject"] and "Fel enhet" in body(mail[0])
    assert not ab.smtp.to("maria@omsorg.example")
    _rp, done = lifecare_login(ab, NEW_PERSON)
    assert done.status_code == 403 and "Du saknar behörighet" in done.text


def test_an_unreviewed_assignment_ends_at_its_review_date(admin_broker):
    ab = admin_broker
    ab.today.value = ab.today.value - days(200)  # approved 200 days ago, never reviewed
    with admin_login(ab, MANAGER_A) as manager:
        rid = request_id(request_new_person(manager))
    with admin_login(ab, IT) as it:
        page = it.get(f"/admin/requests/{rid}")
        assert it.post(f"/admin/requests/{rid}/approve",
                       data={"csrf": csrf(page.text)}).status_code == 303
    ab.today.value = ab.today.value + days(200)
    _rp, done = lifecare_login(ab, NEW_PERSON)
    assert done.status_code == 403 and "Du saknar behörighet" in done.text
    with admin_login(ab, IT) as it:
        home = it.get("/admin/")
        assert "Maria" in home.text.split("upphört vid granskningsdatum")[1]
    # The manager can no longer confirm it (past the date); IT can reinstate it.
    with admin_login(ab, MANAGER_A) as manager:
        page = manager.get("/admin/reviews")
        user_id = re.search(r'decision:(u-[0-9a-f]+):', page.text)
        assert user_id is None
    assert ORG_A
