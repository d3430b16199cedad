"""Our signed JWTs: ID tokens, logout tokens, RFC 9068 access tokens, signed UserInfo."""

from __future__ import annotations

import time
from typing import Any

from joserfc import jwt

from ..keys import KeyRing


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
