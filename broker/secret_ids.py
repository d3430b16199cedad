"""Random identifiers, and the store key of a secret value.

Every secret the broker hands out (codes, cookies, references) is random, and the store
keys only its SHA-256, so a copy of Redis yields no usable credential.
"""

from __future__ import annotations

import base64
import hashlib
import secrets


def b64(data: bytes) -> str:
    """Unpadded base64url, as JOSE and URLs want it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def digest(value: str) -> str:
    """The store key of a secret value."""
    return b64(hashlib.sha256(value.encode()).digest())


def new_id(nbytes: int = 16) -> str:
    return secrets.token_urlsafe(nbytes)
