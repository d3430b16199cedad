"""Minting and recognising codes and tokens.

Codes and tokens are random strings; the store keys only their SHA-256. Access and
refresh tokens carry their family id in clear before a dot, so that one read (`MGET`)
fetches both the token record and its family's revocation state.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any

from joserfc import jwt

from ..keys import KeyRing


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def digest(value: str) -> str:
    """The store key of a secret value."""
    return b64(hashlib.sha256(value.encode()).digest())


def new_id(nbytes: int = 16) -> str:
    return secrets.token_urlsafe(nbytes)


def new_token(family: str) -> str:
    return f"{family}.{secrets.token_urlsafe(32)}"


def family_of(token: str) -> str | None:
    family, sep, rest = token.partition(".")
    if not sep or not family or not rest or len(token) > 256:
        return None
    return family


def code_key(code: str) -> str:
    return "code:" + digest(code)


def used_code_key(code: str) -> str:
    return "code-used:" + digest(code)


def access_key(token: str) -> str:
    return "at:" + digest(token)


def refresh_key(token: str) -> str:
    return "rt:" + digest(token)


def family_key(family: str) -> str:
    return "fam:" + family


class Signer:
    """Signs our JWTs with the active key of the requested algorithm."""

    def __init__(self, keyring: KeyRing, issuer: str) -> None:
        self.keyring = keyring
        self.issuer = issuer

    def sign(self, claims: dict[str, Any], alg: str, typ: str = "JWT") -> str:
        key = self.keyring.signing_key(alg)
        header = {"alg": alg, "kid": key.kid, "typ": typ}
        return jwt.encode(header, claims, key.key, algorithms=[alg])

    def verify(self, token: str, *, check_exp: bool = True) -> dict[str, Any]:
        """Claims of a JWT we issued (id_token_hint, JWT access tokens), or ValueError."""
        try:
            decoded = jwt.decode(token, self.keyring.verification_keys(), algorithms=["RS256", "ES256"])
        except Exception as exc:  # joserfc raises many error types for bad input
            raise ValueError(f"not a token of this issuer ({type(exc).__name__})") from None
        claims = dict(decoded.claims)
        if claims.get("iss") != self.issuer:
            raise ValueError("not a token of this issuer")
        if check_exp and int(claims.get("exp", 0)) < time.time():
            raise ValueError("expired")
        return claims
