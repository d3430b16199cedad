"""Which claims a relying party receives, and where.

Vocabulary (docs/claims.md has the table RPs read):
- identity claims of the Swedish OIDC profile, released by scope or `claims` request;
- healthcare claims under the names Inera's IdP already hands to care systems, so an RP
  migrating from there changes nothing; `roleCode` is ours (Inera has no role code). They
  come with the scope `assignments`: the chosen role and unit in the ID token and
  UserInfo, the list of all the user's assignments in UserInfo only (tokens stay small);
- authentication information (device IP, the card's certificate) under `authn_info`.

Release rules of the Swedish profile: never release a claim that was not asked for by
scope or `claims`; destinations in the `claims` parameter win over the scope's. And a
client's registration bounds both: the scopes it may ask for, and through them the
claims a `claims` request (or request object) may name (`narrow_claims_request`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from ..identifiers import is_coordination_number
from ..secret_ids import b64

OIDC_SE = "https://id.oidc.se/claim/"
PIN = OIDC_SE + "personalIdentityNumber"
COORDINATION = OIDC_SE + "coordinationNumber"
DEVICE_IP = OIDC_SE + "deviceIp"
USER_CERTIFICATE = OIDC_SE + "userCertificate"
CREDENTIAL_VALID_FROM = OIDC_SE + "credentialValidFrom"
CREDENTIAL_VALID_TO = OIDC_SE + "credentialValidTo"
SCOPE_NUMBER = "https://id.oidc.se/scope/naturalPersonNumber"
SCOPE_INFO = "https://id.oidc.se/scope/naturalPersonInfo"
SCOPE_ASSIGNMENTS = "assignments"
SCOPE_AUTHN = "authn_info"

NAME_CLAIMS = ("name", "given_name", "family_name")
ASSIGNMENT_CLAIMS = (
    "employeeHsaId",
    "commissionHsaId",
    "commissionName",
    "roleCode",
    "healthCareUnitHsaId",
    "unitId",
    "healthCareUnitName",
    "healthCareProviderHsaId",
    "organizationId",
    "healthCareProviderName",
)
AUTHN_CLAIMS = (DEVICE_IP, USER_CERTIFICATE, CREDENTIAL_VALID_FROM, CREDENTIAL_VALID_TO)
SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "profile": NAME_CLAIMS,
    SCOPE_INFO: NAME_CLAIMS,
    SCOPE_NUMBER: (PIN, COORDINATION),
    "email": ("email", "email_verified"),
    SCOPE_ASSIGNMENTS: (*ASSIGNMENT_CLAIMS, "assignments"),
    SCOPE_AUTHN: AUTHN_CLAIMS,
}
# Claims a scope sends to the ID token as well as UserInfo: the personal number (essential
# there per the Swedish profile), the chosen role and unit (what care systems act on), and
# authentication information (the profile: SHOULD be in the ID token).
SCOPE_ID_TOKEN = {PIN, COORDINATION, *ASSIGNMENT_CLAIMS, *AUTHN_CLAIMS}
PROTOCOL_CLAIMS = {"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid",
                   "at_hash", "azp", "jti"}
_HSA = re.compile(r"^SE\d{10}-[A-Za-z0-9]+$")


def covered_claims(scopes: Iterable[str]) -> set[str]:
    """Every claim the given scopes cover (for a client: what it may ever receive)."""
    out: set[str] = set()
    for scope in scopes:
        out.update(SCOPE_CLAIMS.get(scope, ()))
    return out


class ClaimsRequestError(ValueError):
    """A `claims` parameter that is not the JSON object OIDC Core 5.5 describes."""


def parse_claims_request(raw: str | dict | None) -> dict[str, dict[str, Any]]:
    if raw in (None, ""):
        return {}
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        raise ClaimsRequestError("the claims parameter is not valid JSON") from None
    if not isinstance(data, dict):
        raise ClaimsRequestError("the claims parameter must be a JSON object")
    out: dict[str, dict[str, Any]] = {}
    for member in ("id_token", "userinfo"):
        part = data.get(member)
        if part is None:
            continue
        if not isinstance(part, dict) or not all(v is None or isinstance(v, dict) for v in part.values()):
            raise ClaimsRequestError(f"claims.{member} must map claim names to null or an object")
        out[member] = part
    return out


def narrow_claims_request(requested: dict[str, dict[str, Any]],
                          allowed_scopes: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The `claims` request within what the client's registered scopes cover: a claim
    outside them is never released, essential or not (OIDC Core 5.5.1: the OP may
    decline). Protocol claims (`acr`, `sub`, `auth_time` ...) are not scope-bound."""
    allowed = covered_claims(allowed_scopes) | PROTOCOL_CLAIMS
    out: dict[str, dict[str, Any]] = {}
    for member, claims in requested.items():
        kept = {name: spec for name, spec in claims.items() if name in allowed}
        if kept:
            out[member] = kept
    return out


def pairwise_subject(user_id: str, sector: str, salt: str) -> str:
    return b64(hashlib.sha256(f"{sector}|{user_id}|{salt}".encode()).digest())


def subject_for(user_id: str, client_settings: Any, salt: str | None) -> str:
    if client_settings.subject_type == "pairwise" and salt:
        sector = urlsplit(client_settings.redirect_uris[0]).hostname or client_settings.client_id
        return pairwise_subject(user_id, sector, salt)
    return user_id


# Values of the user record a client's `claims` mapping may release under a claim name:
# `user.email`, `user.title`, `user.accounts.<system>`. They travel with the assignment
# claims under these internal names and leave `apply_mapping` renamed or not at all.
USER_VALUE = "user."
USER_VALUE_RULE = "user.email, user.title or user.accounts.<system>"


def _user_values(user: dict[str, Any]) -> dict[str, str]:
    out = {f"{USER_VALUE}{key}": user[key] for key in ("email", "title") if user.get(key)}
    for system, name in (user.get("accounts") or {}).items():
        out[f"{USER_VALUE}accounts.{system}"] = name
    return out


def check_claims_mapping(mapping: dict[str, str | None]) -> None:
    """Raise ValueError naming the key for a mapping the release could not follow."""
    from ..authz.records import SYSTEM_PATTERN

    targets: dict[str, str] = {}
    for source, target in mapping.items():
        if source.startswith(USER_VALUE):
            attribute = source[len(USER_VALUE):]
            system = attribute.removeprefix("accounts.")
            if attribute not in ("email", "title") and not (
                    attribute.startswith("accounts.") and re.match(SYSTEM_PATTERN, system)):
                raise ValueError(f"{source}: not a value of the user record (use "
                                 f"{USER_VALUE_RULE})")
            if not target:
                raise ValueError(f"{source}: name the claim it is released as")
        if source in PROTOCOL_CLAIMS:
            raise ValueError(f"{source}: a protocol claim cannot be renamed or dropped")
        if target is None:
            continue
        if not target.strip() or target != target.strip():
            raise ValueError(f"{source}: the claim name is empty or has spaces around it")
        if target in PROTOCOL_CLAIMS or target.startswith(USER_VALUE):
            raise ValueError(f"{source}: {target} cannot be the name of a released claim")
        if target in targets:
            raise ValueError(f"{source}: {targets[target]} is released as {target} already")
        targets[target] = source


def assignment_claims(user: dict[str, Any], assignment: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = _user_values(user)
    if user.get("hsa_id"):
        out["employeeHsaId"] = user["hsa_id"]
    if not assignment:
        return out
    out["commissionHsaId"] = assignment["id"]
    out["commissionName"] = assignment["role"]["name"]
    out["roleCode"] = assignment["role"]["id"]
    unit, org = assignment["unit"], assignment["organization"]
    if _HSA.match(unit["id"]):
        out["healthCareUnitHsaId"] = unit["id"]
    else:
        out["unitId"] = unit["id"]
    out["healthCareUnitName"] = unit["name"]
    out["healthCareProviderHsaId" if _HSA.match(org["id"]) else "organizationId"] = org["id"]
    out["healthCareProviderName"] = org["name"]
    return out


def person_claims(grant: dict[str, Any]) -> dict[str, Any]:
    """Every claim we could release for this login (released only on request)."""
    user, identity = grant.get("user") or {}, grant.get("identity") or {}
    out: dict[str, Any] = {}
    pin = identity.get("personal_identity_number") or user.get("personal_identity_number")
    if pin:
        out[COORDINATION if is_coordination_number(pin) else PIN] = pin
    out.update(_name_claims(user, identity))
    if user.get("email"):
        out["email"] = user["email"]
        # Only the authorization source can vouch for an address (OIDC Core 5.1).
        out["email_verified"] = user.get("email_verified") is True
    out.update(identity.get("claims") or {})
    out.update(assignment_claims(user, grant.get("assignment")))
    if grant.get("assignments") is not None:
        out["assignments"] = grant["assignments"]
    return out


def _name_claims(user: dict[str, Any], identity: dict[str, Any]) -> dict[str, str]:
    """The names the upstream login gave, else those of the authorization source."""
    given = identity.get("given_name") or user.get("given_name")
    family = identity.get("family_name") or user.get("family_name")
    name = identity.get("name") or " ".join(x for x in (given, family) if x)
    named = (("given_name", given), ("family_name", family), ("name", name))
    return {claim: value for claim, value in named if value}


def release(grant: dict[str, Any], destination: str) -> dict[str, Any]:
    """Claims for `destination` ("id_token" or "userinfo") before per-client mapping."""
    scopes = set(grant.get("scope", "").split())
    requested = grant.get("claims_request") or {}
    available = person_claims(grant)
    wanted: set[str] = set()
    for scope in scopes:
        for claim in SCOPE_CLAIMS.get(scope, ()):
            if destination == "userinfo" or claim in SCOPE_ID_TOKEN:
                wanted.add(claim)
    wanted |= set(requested.get(destination, {}))
    out = {c: available[c] for c in wanted if c in available and c not in PROTOCOL_CLAIMS}
    # User-record values go out only under the name the client's registered `claims`
    # mapping gives them (an agreed policy, set by the operator): `apply_mapping` decides.
    out.update({k: v for k, v in available.items() if k.startswith(USER_VALUE)})
    return out


def flatten(value: Any) -> Any:
    """Flat strings for RPs that cannot read structured claims (per client `flat_claims`):
    an assignment becomes `roleCode@unitId`, a list becomes space-separated values."""
    if isinstance(value, dict):
        if "role" in value and "unit" in value:
            return f"{value['role']['id']}@{value['unit']['id']}"
        return " ".join(f"{k}={flatten(v)}" for k, v in value.items())
    if isinstance(value, list):
        return " ".join(str(flatten(v)) for v in value)
    return value


def apply_mapping(claims: dict[str, Any], mapping: dict[str, str | None],
                  flat: bool = False) -> dict[str, Any]:
    """Per-client renames (`from: to`) and drops (`from: null`), and optionally flat
    strings; protocol claims (`amr`, `aud` ...) keep their standard shape.

    User-record values (`user.accounts.lifecare` ...) are released only under the name the
    mapping gives them and never otherwise; a mapped value wins over a released claim of
    the same name (`user.email: email` sends the work e-mail without the `email` scope)."""
    if flat:
        claims = {k: v if k in PROTOCOL_CLAIMS or k.startswith(USER_VALUE) else flatten(v)
                  for k, v in claims.items()}
    out: dict[str, Any] = {}
    mapped: dict[str, Any] = {}
    for name, value in claims.items():
        if name.startswith(USER_VALUE):
            if mapping.get(name):
                mapped[mapping[name]] = value  # type: ignore[index]
        elif name in PROTOCOL_CLAIMS or name not in mapping:
            out[name] = value
        elif mapping[name]:
            out[mapping[name]] = value  # type: ignore[index]
    out.update(mapped)
    return out


def unmet_essential(grant: dict[str, Any], destination: str, delivered: dict[str, Any]) -> list[str]:
    """Essential claims asked for in `claims` that this login cannot deliver."""
    requested = (grant.get("claims_request") or {}).get(destination, {})
    missing = []
    for name, spec in requested.items():
        if isinstance(spec, dict) and spec.get("essential") and name not in PROTOCOL_CLAIMS:
            if name not in delivered:
                missing.append(name)
            elif "value" in spec and delivered[name] != spec["value"]:
                missing.append(name)
            elif "values" in spec and delivered[name] not in spec["values"]:
                missing.append(name)
    return missing
