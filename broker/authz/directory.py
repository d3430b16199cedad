"""An immutable in-memory index of users, and how an identity is turned into lookup keys."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .model import User

if TYPE_CHECKING:
    from ..connectors.base import Identity


def identity_keys(identity: Identity) -> tuple[str | None, str | None]:
    """(personal number, HSA-id) in the canonical form sources store them in.

    Connectors hand over a 12-digit personal number; an HSA-id from a certificate may come
    in lower case, and HSA-ids compare case-insensitively.
    """
    pnr = identity.personal_identity_number
    pnr = pnr.strip().replace("-", "") if pnr else None
    hsa = identity.hsa_id.strip().upper() if identity.hsa_id else None
    return pnr or None, hsa or None


class UserDirectory:
    """Users indexed by id, personal number and HSA-id; replaced whole, never mutated.

    Lookups follow `model.match_user`: the personal number first, then the HSA-id, so the
    same person arriving by BankID or by SITHS is the same user.
    """

    def __init__(self, users: Iterable[User]) -> None:
        self.users = tuple(users)
        self._by_id = {u.id: u for u in self.users}
        self._by_pnr = {u.personal_identity_number: u for u in self.users
                        if u.personal_identity_number}
        self._by_hsa = {u.hsa_id.upper(): u for u in self.users if u.hsa_id}

    def find(self, identity: Identity) -> User | None:
        pnr, hsa = identity_keys(identity)
        if pnr and pnr in self._by_pnr:
            return self._by_pnr[pnr]
        if hsa and hsa in self._by_hsa:
            return self._by_hsa[hsa]
        return None

    def get(self, user_id: str) -> User | None:
        return self._by_id.get(user_id)

    def __len__(self) -> int:
        return len(self.users)
