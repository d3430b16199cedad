"""Authorization sources behind one interface, and the assignment model."""

from .model import (
    Assignment,
    AuthorizationSource,
    AuthorizationSourceError,
    Named,
    User,
    match_user,
)

__all__ = [
    "Assignment",
    "AuthorizationSource",
    "AuthorizationSourceError",
    "Named",
    "User",
    "match_user",
]
