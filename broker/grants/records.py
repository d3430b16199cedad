"""The records of a login's afterlife, as they are kept in the store.

A login that ends in a code becomes a *grant*: what one client was granted, about whom,
how they logged in and in which role. Redeeming the code turns it into a *family*: the
grant plus the refresh-token chain and the access tokens issued under it, all of which
end together (rotation never extends the family; logout, withdrawal, a replayed code or a
reused refresh token revoke it whole).

Records are dataclasses; `to_record` gives the plain JSON object the store keeps and
`from_record` reads one back. `to_record` is shallow on purpose: the nested user,
identity and assignment snapshots are already plain JSON (copying them deeply was a fifth
of a login's CPU).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]


@dataclass(slots=True)
class Grant:
    """What a login granted one client. Fixed when the code is issued; tokens and
    claims of every later refresh are made from it."""

    client_id: str
    sub: str
    user: Json  # the authorization source's user record, without the assignment list
    identity: Json  # the upstream identity, without its evidence
    assignment: Json | None  # the chosen role and unit
    assignments: list[Json] | None  # every valid assignment, only with the scope asking for it
    auth_time: int
    acr: str | None
    amr: list[str] | None
    sid: str | None
    scope: str
    claims_request: Json

    @property
    def user_id(self) -> str:
        return self.user["id"]

    def claims_source(self, scope: str | None = None) -> Json:
        """The mapping `oidc.claims.release` reads, for this grant at `scope`."""
        return {"user": self.user, "identity": self.identity, "assignment": self.assignment,
                "assignments": self.assignments, "scope": self.scope if scope is None else scope,
                "claims_request": self.claims_request}

    def to_record(self) -> Json:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_record(cls, record: Json) -> Grant:
        return cls(**record)


@dataclass(slots=True)
class PendingCode:
    """An issued, not yet redeemed authorization code (keyed by the code's hash)."""

    family: str  # the family its redemption creates (also the code's prefix)
    grant: Grant
    redirect_uri: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    expires: int

    def to_record(self) -> Json:
        return {"family": self.family, "grant": self.grant.to_record(),
                "redirect_uri": self.redirect_uri, "nonce": self.nonce,
                "code_challenge": self.code_challenge,
                "code_challenge_method": self.code_challenge_method, "expires": self.expires}

    @classmethod
    def from_record(cls, record: Json) -> PendingCode:
        return cls(**{**record, "grant": Grant.from_record(record["grant"])})


@dataclass(slots=True)
class SpentCode:
    """What is left of a redeemed code: enough to revoke what it produced on a replay."""

    family: str
    client_id: str

    def to_record(self) -> Json:
        return {"family": self.family, "client_id": self.client_id}

    @classmethod
    def from_record(cls, record: Json) -> SpentCode:
        return cls(**record)


@dataclass(slots=True)
class Family:
    """A redeemed grant: written once at redemption, never changed (its mutable part is
    `FamilyState`, so a rotation rewrites a few bytes, not the grant)."""

    id: str
    grant: Grant
    created: int
    expires: int  # created + refresh_token_ttl: no token of the family outlives it
    refresh: bool  # whether the client gets refresh tokens at all

    def to_record(self) -> Json:
        return {"id": self.id, "grant": self.grant.to_record(), "created": self.created,
                "expires": self.expires, "refresh": self.refresh}

    @classmethod
    def from_record(cls, record: Json) -> Family:
        return cls(**{**record, "grant": Grant.from_record(record["grant"])})


@dataclass(slots=True)
class FamilyState:
    """The family's refresh chain: the live generation, when it was issued and for which
    scope. Generations before `gen` are spent; presenting one is a reuse (or, for
    `gen - 1` within the grace window, a retry that gets the same answer again)."""

    gen: int
    issued: int
    scope: str

    def to_record(self) -> Json:
        return {"gen": self.gen, "issued": self.issued, "scope": self.scope}

    @classmethod
    def from_record(cls, record: Json) -> FamilyState:
        return cls(**record)


@dataclass(slots=True)
class Revocation:
    """Why and when a family was revoked. Its presence is the revocation."""

    at: int
    reason: str

    def to_record(self) -> Json:
        return {"at": self.at, "reason": self.reason}

    @classmethod
    def from_record(cls, record: Json) -> Revocation:
        return cls(**record)


@dataclass(slots=True)
class AccessToken:
    """One access token (generation `gen` of its family): its scope and lifetime."""

    family: str
    client_id: str
    gen: int
    scope: str
    issued: int
    expires: int

    def to_record(self) -> Json:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_record(cls, record: Json) -> AccessToken:
        return cls(**record)
