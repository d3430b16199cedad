"""Every store read and write of a login's afterlife: codes, families, access tokens.

The protocol side (`oidc/`) decides; this module keeps the records and makes each change
one atomic store operation:

- issuing a code writes its pending record;
- redeeming takes the code and writes the family, its state and the first access token in
  one step (`take_and_put`): of concurrent redemptions exactly one wins;
- rotating a refresh token moves the family's generation on only if it is still the one
  presented (`compare_and_put`): of concurrent rotations exactly one wins, and the others
  learn which generation won and when, to answer alike inside the grace window;
- revoking writes a marker next to the family that every later use checks.

Whether a token is still good is answered here, once, for UserInfo, introspection and
refresh alike, so they can never disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..session import ended_key, user_revoked_key
from ..store import Store
from .records import (
    AccessToken,
    Family,
    FamilyState,
    PendingCode,
    Revocation,
    SpentCode,
)
from .tokens import (
    TokenMinter,
    TokenRef,
    access_key,
    code_family,
    code_key,
    family_key,
    revoked_key,
    spent_code_key,
    state_key,
)


@dataclass(slots=True)
class CodeLookup:
    """A presented code: still pending, or spent (a replay), or neither (unknown)."""

    code: str
    family: str
    pending: PendingCode | None
    spent: SpentCode | None


@dataclass(slots=True)
class FamilyView:
    """A family with everything that says whether its tokens still work."""

    family: Family
    state: FamilyState
    revoked: Revocation | None
    session_ended: bool

    def live(self, now: int) -> bool:
        return self.revoked is None and not self.session_ended and self.family.expires > now


@dataclass(slots=True)
class RefreshLookup:
    """A genuine refresh token of ours and its family."""

    ref: TokenRef
    view: FamilyView

    @property
    def current(self) -> bool:
        return self.ref.gen == self.view.state.gen

    def within_grace(self, now: int, grace: int) -> bool:
        return spent_within_grace(self.ref.gen, self.view.state, now, grace)


def spent_within_grace(gen: int, state: FamilyState, now: int, grace: int) -> bool:
    """Generation `gen` was spent by the rotation that made `state`, at most `grace`
    seconds ago (a second tab, a retry after a lost response). No window when grace is 0."""
    return grace > 0 and gen == state.gen - 1 and now - state.issued <= grace


@dataclass(slots=True)
class ActiveAccess:
    """An access token that works now, with the family it was issued under."""

    token: AccessToken
    family: Family


class GrantStore:
    def __init__(self, store: Store, minter: TokenMinter, clock: Callable[[], float],
                 remember: int, verify_jwt: Callable[[str], dict]) -> None:
        self.store = store
        self.minter = minter
        self.clock = clock
        # Our own signature check (RFC 9068 access tokens); raises ValueError.
        self.verify_jwt = verify_jwt
        # How long a revocation is remembered when the family's own end is not known:
        # the longest any family can live.
        self.remember = remember

    def now(self) -> int:
        return int(self.clock())

    # -- codes ---------------------------------------------------------------------------
    async def save_code(self, code: str, pending: PendingCode) -> None:
        ttl = max(1, pending.expires - self.now())
        await self.store.put(code_key(pending.family, code), pending.to_record(), ttl)

    async def find_code(self, code: str) -> CodeLookup | None:
        family = code_family(code)
        if family is None:
            return None
        pending, spent = await self.store.get_many([code_key(family, code),
                                                    spent_code_key(family, code)])
        return CodeLookup(code, family, PendingCode.from_record(pending) if pending else None,
                          SpentCode.from_record(spent) if spent else None)

    async def redeem(self, code: str, family: Family, state: FamilyState,
                     access: AccessToken) -> bool:
        """Take the code and create its family, as one step. False: another redemption
        took it first (the caller treats that as a replay)."""
        left = max(1, family.expires - self.now())
        items = [
            (family_key(family.id), family.to_record(), left),
            (state_key(family.id), state.to_record(), left),
            (access_key(family.id, access.gen), access.to_record(), _ttl(access, self.now())),
            # The spent code remembers its family, so a replay can revoke what it produced.
            (spent_code_key(family.id, code),
             SpentCode(family.id, family.grant.client_id).to_record(), left),
        ]
        return await self.store.take_and_put(code_key(family.id, code), items)

    # -- families ------------------------------------------------------------------------
    async def _view(self, family_id: str) -> FamilyView | None:
        family, state, revoked = await self.store.get_many(
            [family_key(family_id), state_key(family_id), revoked_key(family_id)])
        if not family or not state:
            return None
        fam = Family.from_record(family)
        return FamilyView(fam, FamilyState.from_record(state),
                          Revocation.from_record(revoked) if revoked else None,
                          await self._session_ended(fam))

    async def _session_ended(self, family: Family) -> bool:
        """The SSO session the grant was issued under was ended (logout, withdrawal, an
        admin's revoke), or an admin revoked every grant the user had."""
        keys = [user_revoked_key(family.grant.user_id)]
        if family.grant.sid:
            keys.append(ended_key(family.grant.sid))
        user_revoked, *ended = await self.store.get_many(keys)
        if user_revoked and family.created <= int(user_revoked["at"]):
            return True
        return any(ended)

    async def find_refresh(self, token: str) -> RefreshLookup | None:
        ref = self.minter.read(token, "refresh")
        if ref is None:
            return None
        view = await self._view(ref.family)
        if view is None or ref.gen > view.state.gen:
            return None
        return RefreshLookup(ref, view)

    async def rotate(self, lookup: RefreshLookup, state: FamilyState,
                     access: AccessToken) -> tuple[bool, FamilyState | None]:
        """Move the family from the presented generation to `state`, with its access
        token, only if nobody did first: (True, None). Otherwise (False, the state that
        won), or (False, None) when the family ended meanwhile."""
        family = lookup.view.family
        left = max(1, family.expires - self.now())
        moved, current = await self.store.compare_and_put(
            state_key(family.id), "gen", lookup.ref.gen, state.to_record(), left,
            [(access_key(family.id, access.gen), access.to_record(), _ttl(access, self.now()))])
        return moved, FamilyState.from_record(current) if current else None

    async def revoke(self, family_id: str, reason: str, expires: int | None = None) -> None:
        """Revoke a family: its refresh tokens and its access tokens stop at once."""
        now = self.now()
        ttl = max(1, (expires - now) if expires else self.remember)
        await self.store.put(revoked_key(family_id), Revocation(now, reason).to_record(), ttl)

    # -- access tokens -------------------------------------------------------------------
    def access_ref(self, token: str) -> TokenRef | None:
        """An opaque access token by its MAC, an RFC 9068 one by our signature."""
        ref = self.minter.read(token, "access")
        if ref is not None or token.count(".") != 2 or len(token) > 8192:
            return ref
        try:
            claims = self.verify_jwt(token)
        except ValueError:
            return None
        family, _, gen = str(claims.get("jti", "")).rpartition(".")
        return TokenRef(family, int(gen)) if family and gen.isdigit() and len(gen) < 10 else None

    async def find_access_token(self, token: str) -> ActiveAccess | None:
        """What UserInfo and introspection ask: does this access token work now?"""
        ref = self.access_ref(token)
        return await self.find_access(ref) if ref is not None else None

    async def find_access(self, ref: TokenRef) -> ActiveAccess | None:
        """The access token `ref` if it works now: issued, not expired, not revoked
        (alone or with its family), its family alive and its SSO session not ended."""
        record, family, revoked = await self.store.get_many(
            [access_key(ref.family, ref.gen), family_key(ref.family), revoked_key(ref.family)])
        now = self.now()
        if not record or not family or revoked:
            return None
        token, fam = AccessToken.from_record(record), Family.from_record(family)
        if token.expires <= now or fam.expires <= now:
            return None
        if await self._session_ended(fam):
            # Logout or revocation ended the session: its access tokens end with it.
            return None
        return ActiveAccess(token, fam)

    async def revoke_access(self, ref: TokenRef) -> None:
        """RFC 7009 for one access token: the rest of its family stays."""
        await self.store.delete(access_key(ref.family, ref.gen))


def _ttl(access: AccessToken, now: int) -> int:
    return max(1, access.expires - now)
