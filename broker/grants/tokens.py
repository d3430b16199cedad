"""The codes and tokens of a grant, and the store keys of its records.

Every code and token starts with its family id, so one read finds the family and every
key of a family shares the hash tag `{family}` (one Redis Cluster slot, one atomic script).

    code           <family>.<256 random bits>      the store keys only its hash
    access token   <family>.<gen>.<mac>            mac = HMAC(k, "access|family|gen")
    refresh token  <family>.<gen>.<mac>            mac = HMAC(k, "refresh|family|gen")

Tokens are MACs under a key derived from the shared secret (keys directory), not random
strings with a stored hash, for two reasons. A refresh token of an old generation is then
provably one we issued, so presenting it is a reuse to punish, at no cost in memory: the
family only remembers its current generation (RFC 9700 4.14.2), and a made-up token that
merely carries a known family id revokes nothing. And the tokens of a generation can be
made again, so a retry inside the grace window gets the very tokens the first rotation
produced without the store ever holding them. Redis still holds nothing that works as a
credential: the key never leaves the keys directory.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from ..secret_ids import b64, digest, new_id

_FAMILY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_GEN = re.compile(r"^(0|[1-9][0-9]{0,8})$")
MAX_TOKEN = 256


@dataclass(frozen=True, slots=True)
class TokenRef:
    """A genuine token of ours: which family and generation it belongs to."""

    family: str
    gen: int


class TokenMinter:
    """Makes and recognises codes and tokens. `keys` come from the shared secret: the
    first one signs, all of them verify (secret rotation)."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("no key to sign tokens with")
        self._keys = keys

    @staticmethod
    def new_family() -> str:
        return new_id(16)

    @staticmethod
    def code(family: str) -> str:
        return f"{family}.{new_id(32)}"

    def _mac(self, key: bytes, kind: str, family: str, gen: int) -> str:
        return b64(hmac.new(key, f"{kind}|{family}|{gen}".encode(), hashlib.sha256).digest())

    def access_token(self, family: str, gen: int) -> str:
        return f"{family}.{gen}.{self._mac(self._keys[0], 'access', family, gen)}"

    def refresh_token(self, family: str, gen: int) -> str:
        return f"{family}.{gen}.{self._mac(self._keys[0], 'refresh', family, gen)}"

    def read(self, token: str, kind: str) -> TokenRef | None:
        """The family and generation of a genuine `kind` ("access"/"refresh") token."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN:
            return None
        parts = token.split(".")
        if len(parts) != 3 or not _FAMILY.match(parts[0]) or not _GEN.match(parts[1]):
            return None
        family, gen = parts[0], int(parts[1])
        for key in self._keys:
            if hmac.compare_digest(self._mac(key, kind, family, gen), parts[2]):
                return TokenRef(family, gen)
        return None


def code_family(code: str) -> str | None:
    """The family a code belongs to, when it has the shape of one of our codes."""
    if not isinstance(code, str) or len(code) > MAX_TOKEN:
        return None
    family, sep, rest = code.partition(".")
    return family if sep and rest and _FAMILY.match(family) else None


# -- store keys (the `{family}` hash tag keeps a family in one cluster slot) --------------
def code_key(family: str, code: str) -> str:
    return f"code:{{{family}}}:{digest(code)}"


def spent_code_key(family: str, code: str) -> str:
    return f"code-spent:{{{family}}}:{digest(code)}"


def family_key(family: str) -> str:
    return f"fam:{{{family}}}"


def state_key(family: str) -> str:
    return f"fam-state:{{{family}}}"


def revoked_key(family: str) -> str:
    return f"fam-revoked:{{{family}}}"


def access_key(family: str, gen: int) -> str:
    return f"at:{{{family}}}:{gen}"
