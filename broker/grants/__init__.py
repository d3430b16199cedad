"""A login's afterlife: codes, refresh families and access tokens (see records.py)."""

from .records import (
    AccessToken,
    Family,
    FamilyState,
    Grant,
    PendingCode,
    Revocation,
    SpentCode,
)
from .store import (
    ActiveAccess,
    CodeLookup,
    FamilyView,
    GrantStore,
    RefreshLookup,
    spent_within_grace,
)
from .tokens import TokenMinter, TokenRef

__all__ = [
    "AccessToken",
    "ActiveAccess",
    "CodeLookup",
    "Family",
    "FamilyState",
    "FamilyView",
    "Grant",
    "GrantStore",
    "PendingCode",
    "RefreshLookup",
    "Revocation",
    "SpentCode",
    "TokenMinter",
    "TokenRef",
    "spent_within_grace",
]
