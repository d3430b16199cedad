"""A client's `claims` mapping releases values of the user record under a claim name:
validated at load (errors name the key), never released unmapped."""

from __future__ import annotations

import pytest

from broker.config import ConfigError, parse_settings
from broker.oidc.claims import apply_mapping, release

USER = {"id": "u-anna", "given_name": "Anna", "email": "anna@omsorg.example",
        "title": "Undersköterska", "accounts": {"lifecare": "anna.a", "mcss": "ANAN01"}}
ASSIGNMENT = {"id": "a-1", "role": {"id": "usk", "name": "Undersköterska"},
              "unit": {"id": "U1", "name": "Hemtjänst"},
              "organization": {"id": "O1", "name": "Omsorg AB"}}


def claims_for(mapping, scope="openid", flat=False, user=USER):
    grant = {"user": user, "identity": {}, "assignment": ASSIGNMENT, "scope": scope}
    return {dest: apply_mapping(release(grant, dest), mapping, flat)
            for dest in ("id_token", "userinfo")}


def test_lifecare_gets_its_user_name_and_mcss_the_work_email() -> None:
    # The role claims come with the scope `assignments`; the mapped user values with or without.
    lifecare = claims_for({"user.accounts.lifecare": "preferred_username"}, "openid assignments")
    mcss = claims_for({"user.email": "email", "user.title": "title"}, "openid assignments")
    for dest in ("id_token", "userinfo"):
        assert lifecare[dest]["preferred_username"] == "anna.a"
        assert "email" not in lifecare[dest] and "title" not in lifecare[dest]
        assert mcss[dest]["email"] == "anna@omsorg.example"
        assert mcss[dest]["title"] == "Undersköterska"
        assert "preferred_username" not in mcss[dest]
        for released in (lifecare[dest], mcss[dest]):
            assert not [k for k in released if k.startswith("user.")]
            assert released["roleCode"] == "usk"


def test_nothing_of_the_user_record_without_a_mapping() -> None:
    for released in claims_for({}).values():
        assert not [k for k in released if k.startswith("user.")]
        assert "preferred_username" not in released and "title" not in released
    flat = claims_for({"user.accounts.lifecare": "preferred_username"}, flat=True)
    assert flat["id_token"]["preferred_username"] == "anna.a"
    assert not [k for k in flat["userinfo"] if k.startswith("user.")]


def test_a_person_without_the_account_gets_no_claim() -> None:
    user = {**USER, "accounts": {"mcss": "ANAN01"}}
    released = claims_for({"user.accounts.lifecare": "preferred_username"}, user=user)
    assert "preferred_username" not in released["id_token"]


def test_renames_and_drops_still_work_beside_user_values() -> None:
    released = claims_for({"commissionName": "role", "healthCareUnitName": None,
                           "user.accounts.mcss": "mcss_user"}, "openid assignments")["id_token"]
    assert released["role"] == "Undersköterska" and "commissionName" not in released
    assert "healthCareUnitName" not in released and released["mcss_user"] == "ANAN01"


BASE = {"issuer": "https://login.example", "clients": [
    {"client_id": "lifecare", "client_name": "Lifecare", "client_secret": "s" * 32,
     "redirect_uris": ["https://lifecare.example/cb"]}]}


@pytest.mark.parametrize(("mapping", "expected"), [
    ({"user.acounts.lifecare": "preferred_username"},
     "clients[0].claims: user.acounts.lifecare: not a value of the user record"),
    ({"user.accounts.Life Care": "preferred_username"},
     "clients[0].claims: user.accounts.Life Care: not a value of the user record"),
    ({"user.accounts.lifecare": None},
     "clients[0].claims: user.accounts.lifecare: name the claim it is released as"),
    ({"user.email": "sub"}, "clients[0].claims: user.email: sub cannot be the name"),
    ({"user.email": "email", "user.title": "email"},
     "clients[0].claims: user.title: user.email is released as email already"),
    ({"sub": "subject"}, "clients[0].claims: sub: a protocol claim cannot be renamed"),
    ({"user.title": " title"}, "clients[0].claims: user.title: the claim name is empty"),
])
def test_bad_mappings_stop_start_up_naming_the_key(mapping, expected) -> None:
    data = {**BASE, "clients": [{**BASE["clients"][0], "claims": mapping}]}
    with pytest.raises(ConfigError) as err:
        parse_settings(data, "broker.yaml")
    assert f"broker.yaml: {expected}" in str(err.value)


@pytest.mark.parametrize(("admin", "expected"), [
    ({"client_id": "lifecare"}, "admin.client_id: 'lifecare' is the admin app's own client"),
    ({"organizations": [{"id": "O", "name": "O", "clients": ["nope"],
                         "units": [{"id": "U", "name": "U"}]}]},
     "admin.organizations[0].clients: 'nope' is not a client_id"),
    ({"requestable_roles": [{"code": "it-admin", "name": "IT"}]},
     "requestable_roles[0]: it-admin is an IT role"),
    ({"roles": {"it": ["x"], "manager": ["x"]}}, "x: a role code is either IT or manager"),
    ({"systems": ["Lifecare"]}, "Lifecare: a system name has"),
])
def test_bad_admin_settings_name_the_key(admin, expected) -> None:
    data = {**BASE, "admin": {"roles": {"it": ["it-admin"], "manager": ["chef"]}, **admin}}
    with pytest.raises(ConfigError) as err:
        parse_settings(data, "broker.yaml")
    assert expected in str(err.value)
