"""Signing keys: load, generate, rotate, publish.

Key lifecycle, so that relying parties that cache the JWKS never meet an unknown `kid`:

    next      published in the JWKS, signs nothing yet
    active    signs; one per algorithm
    retired   signs nothing, stays published until everything it signed has expired

`broker keys rotate` promotes the pre-published `next` key and publishes a fresh `next`.
Each key is one private JWK in `<kid>.json` (mode 0600) with its state alongside.

The directory also holds the *shared secret* (`secret.key`, mode 0600): the symmetric key
material every replica must share and that Redis must never hold, from which purpose keys
are derived (HKDF): the MACs of refresh and access tokens, for now. One base64url value
per line; the first signs, every line verifies, so a new secret can be put in front of the
old one and the old line removed once everything it signed has expired.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc.jwk import ECKey, KeySet, RSAKey

ALGORITHMS = ("RS256", "ES256")
_META = ("state", "created", "retired_at")
SECRET_FILE = "secret.key"
SECRET_BYTES = 32


class KeyRingError(Exception):
    """A key directory that cannot be used; the message names the file."""


@dataclass
class SigningKey:
    alg: str
    key: RSAKey | ECKey
    state: str
    created: int
    retired_at: int | None = None

    @property
    def kid(self) -> str:
        return self.key.kid  # type: ignore[return-value]

    def public_jwk(self) -> dict[str, Any]:
        data = self.key.as_dict(private=False)
        data.update({"kid": self.kid, "use": "sig", "alg": self.alg})
        return data

    def to_file(self) -> dict[str, Any]:
        data = self.key.as_dict(private=True)
        data.update({"kid": self.kid, "use": "sig", "alg": self.alg})
        data.update({"state": self.state, "created": self.created, "retired_at": self.retired_at})
        return data


def generate_key(alg: str, state: str = "active", now: int | None = None) -> SigningKey:
    params = {"use": "sig", "alg": alg}
    if alg == "RS256":
        key: RSAKey | ECKey = RSAKey.generate_key(2048, parameters=params, auto_kid=True)
    elif alg == "ES256":
        key = ECKey.generate_key("P-256", parameters=params, auto_kid=True)
    else:
        raise ValueError(f"unsupported signing algorithm {alg}")
    return SigningKey(alg=alg, key=key, state=state, created=int(now or time.time()))


def _write_private(path: Path, data: dict[str, Any] | str) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        if isinstance(data, str):
            fh.write(data)
        else:
            json.dump(data, fh, indent=1)
    os.replace(tmp, path)


def _read_secrets(path: Path) -> list[bytes]:
    """The shared secrets, newest first; [] when the file does not exist."""
    if not path.exists():
        return []
    try:
        lines = [ln.strip() for ln in path.read_text(encoding="ascii").splitlines()]
        values = [base64.urlsafe_b64decode(ln + "=" * (-len(ln) % 4)) for ln in lines if ln]
    except (OSError, ValueError) as exc:
        raise KeyRingError(f"{path}: unusable shared secret ({exc})") from None
    if not values or any(len(v) < SECRET_BYTES for v in values):
        raise KeyRingError(f"{path}: each line must be a base64url value of at least "
                        f"{SECRET_BYTES} bytes")
    return values


def _encode_secret(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


class KeyRing:
    """The keys in one directory. Reloaded when the directory changes (rotation by CLI
    or a new Kubernetes Secret) so replicas follow without a restart."""

    def __init__(self, directory: Path, retention: int) -> None:
        self.directory = directory
        self.retention = retention  # longest lifetime of anything we sign
        self.keys: list[SigningKey] = []
        self.secrets: list[bytes] = []
        self._stamp: tuple[float, int] | None = None
        self._checked = 0.0
        self._jwks_cache: tuple[int, bytes] | None = None

    # -- loading ----------------------------------------------------------------------
    def _fingerprint(self) -> tuple[float, int]:
        files = list(self.directory.glob("*.json")) if self.directory.is_dir() else []
        files += [p for p in (self.directory / SECRET_FILE,) if p.exists()]
        return (max((f.stat().st_mtime for f in files), default=0.0), len(files))

    def load(self) -> None:
        keys: list[SigningKey] = []
        if self.directory.is_dir():
            for path in sorted(self.directory.glob("*.json")):
                try:
                    data = json.loads(path.read_text(encoding="utf-8"))
                    meta = {k: data.pop(k, None) for k in _META}
                    alg = data.get("alg")
                    if alg not in ALGORITHMS:
                        raise ValueError(f"alg must be one of {ALGORITHMS}")
                    cls = RSAKey if alg == "RS256" else ECKey
                    key = cls.import_key(data)
                    if not key.is_private:
                        raise ValueError("holds no private key")
                    if alg == "RS256" and key.raw_value.key_size < 2048:  # type: ignore[union-attr]
                        raise ValueError("RSA keys must have at least 2048 bits")
                except (OSError, ValueError, TypeError) as exc:
                    raise KeyRingError(f"{path}: unusable signing key ({exc})") from None
                keys.append(
                    SigningKey(
                        alg=alg,
                        key=key,
                        state=meta["state"] or "active",
                        created=int(meta["created"] or 0),
                        retired_at=meta["retired_at"],
                    )
                )
        self.keys = keys
        self.secrets = _read_secrets(self.directory / SECRET_FILE)
        self._stamp = self._fingerprint()
        self._jwks_cache = None

    def refresh(self, interval: float = 10.0) -> None:
        """Reload if the directory changed; checked at most every `interval` seconds."""
        now = time.monotonic()
        if now - self._checked < interval:
            return
        self._checked = now
        if self._fingerprint() != self._stamp:
            self.load()

    def save(self, key: SigningKey) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        _write_private(self.directory / f"{key.kid}.json", key.to_file())

    # -- use --------------------------------------------------------------------------
    def signing_key(self, alg: str) -> SigningKey:
        for key in self.keys:
            if key.alg == alg and key.state == "active":
                return key
        raise KeyRingError(f"no active {alg} signing key in {self.directory}")

    def published(self, now: int | None = None) -> list[SigningKey]:
        now = int(now or time.time())
        return [
            k
            for k in self.keys
            if k.state in ("active", "next")
            or (k.state == "retired" and (k.retired_at or 0) + self.retention > now)
        ]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk() for k in self.published()]}

    def jwks_bytes(self) -> bytes:
        """The JWKS document, rebuilt at most once a minute (retired keys age out)."""
        minute = int(time.time()) // 60
        if self._jwks_cache is None or self._jwks_cache[0] != minute:
            body = json.dumps(self.jwks(), separators=(",", ":")).encode()
            self._jwks_cache = (minute, body)
        return self._jwks_cache[1]

    def verification_keys(self) -> KeySet:
        """Our own published keys, to check our own tokens (id_token_hint, JWT tokens)."""
        return KeySet([k.key for k in self.published()])

    def derived_keys(self, purpose: str) -> list[bytes]:
        """Keys for one purpose (e.g. "grant tokens"), one per shared secret, the signing
        one first. Derived, so a key for one purpose says nothing about another."""
        return [HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                     info=f"broker {purpose}".encode()).derive(s) for s in self.secrets]

    def missing(self) -> list[str]:
        """What the broker cannot run without: an active key per algorithm, the secret."""
        have = {k.alg for k in self.keys if k.state == "active"}
        out = [a for a in ALGORITHMS if a not in have]
        if not self.secrets:
            out.append("shared secret")
        return out

    # -- operations (CLI) -------------------------------------------------------------
    def generate_missing(self) -> list[SigningKey | str]:
        """An active and a pre-published next key for every algorithm that lacks them,
        and the shared secret when there is none.

        Under an exclusive lock on the directory: the workers of one `broker serve` (or
        replicas sharing a volume) start together with `keys.generate` on, and each
        generating its own secret left them unable to read one another's sealed records."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".generate.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return self._generate_missing()

    def _generate_missing(self) -> list[SigningKey | str]:
        self.load()
        made: list[SigningKey | str] = []
        for alg in ALGORITHMS:
            states = {k.state for k in self.keys if k.alg == alg}
            for state in ("active", "next"):
                if state not in states:
                    key = generate_key(alg, state)
                    self.save(key)
                    made.append(key)
        if not (self.directory / SECRET_FILE).exists():
            self.directory.mkdir(parents=True, exist_ok=True)
            _write_private(self.directory / SECRET_FILE,
                           _encode_secret(secrets.token_bytes(SECRET_BYTES)) + "\n")
            made.append(SECRET_FILE)
        self.load()
        return made

    def rotate_secret(self) -> str:
        """Put a new shared secret in front: it signs from now on; the old ones still
        verify until their line is removed (after `tokens.refresh_token_ttl`)."""
        self.load()
        lines = [_encode_secret(secrets.token_bytes(SECRET_BYTES))]
        lines += [_encode_secret(v) for v in self.secrets]
        _write_private(self.directory / SECRET_FILE, "\n".join(lines) + "\n")
        self.load()
        return (f"{SECRET_FILE}: a new secret signs now; {len(lines) - 1} older one(s) still "
                "verify; remove the last line once refresh_token_ttl has passed")

    def rotate(self, algs: tuple[str, ...] = ALGORITHMS, now: int | None = None) -> list[str]:
        """Promote each `next` key, retire the active one, publish a fresh `next`,
        and drop retired keys whose tokens have all expired."""
        now = int(now or time.time())
        self.load()
        report = [self._rotate_alg(alg, now) for alg in algs]
        for key in list(self.keys):
            if key.state == "retired" and (key.retired_at or 0) + self.retention <= now:
                (self.directory / f"{key.kid}.json").unlink(missing_ok=True)
                report.append(f"{key.alg}: removed {key.kid} (everything it signed has expired)")
        self.load()
        return report

    def _rotate_alg(self, alg: str, now: int) -> str:
        """One algorithm's step of `rotate`; what it did, for the report."""
        current = [k for k in self.keys if k.alg == alg and k.state == "active"]
        upcoming = [k for k in self.keys if k.alg == alg and k.state == "next"]
        if not upcoming:
            fresh = generate_key(alg, "next", now)
            self.save(fresh)
            return f"{alg}: published next key {fresh.kid}; it signs after the next rotation"
        for key in current:
            key.state, key.retired_at = "retired", now
            self.save(key)
        promoted = upcoming[0]
        promoted.state = "active"
        self.save(promoted)
        fresh = generate_key(alg, "next", now)
        self.save(fresh)
        retired = ", ".join(k.kid for k in current) or "none"
        return f"{alg}: {promoted.kid} signs now; retired {retired}; next is {fresh.kid}"
