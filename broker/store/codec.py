"""How records look at rest: JSON, with personal identity numbers sealed.

Transactions, sessions, codes and grants carry a person's identity number while a login
is under way and for as long as tokens may need it in a claim. At rest (Redis, a dump of
it, a replica, a backup) it must not be readable. Rather than every module remembering to
encrypt, the store's codec seals the value of every field that holds one, wherever in a
record it sits, with AES-GCM under a key derived from the keys directory (never kept in
Redis), and opens it again on read. Code keeps working with plain records.

Only records that name such a field pay for it: the check is a substring search over the
encoded bytes (C speed), the walk and the encryption happen only on a hit.
"""

from __future__ import annotations

import base64
import os
from typing import Any, Protocol

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .base import Record

# Fields whose string value is a personal identity (or coordination) number wherever it
# occurs: identities and user records, BankID's order requirement and completion data,
# and an RP's login_hint (which a BankID login may take as the person's number).
SEALED_FIELDS = frozenset({"personal_identity_number", "personalNumber", "personal_number",
                           "login_hint"})
PREFIX = "sealed:v1:"
_PREFIX_BYTES = b'"' + PREFIX.encode()


class Codec(Protocol):
    def encode(self, record: Record) -> bytes: ...

    def decode(self, data: bytes) -> Record: ...


class PlainCodec:
    """JSON only (tests of the store itself, tools that never see personal data)."""

    @staticmethod
    def encode(record: Record) -> bytes:
        return orjson.dumps(record)

    @staticmethod
    def decode(data: bytes) -> Record:
        return orjson.loads(data)


class SealingCodec:
    """JSON with the values of SEALED_FIELDS sealed. `keys`: the first seals, all open
    (the shared secret's rotation)."""

    def __init__(self, keys: list[bytes], fields: frozenset[str] = SEALED_FIELDS) -> None:
        if not keys:
            raise ValueError("no key to seal records with")
        self._aeads = [AESGCM(k) for k in keys]
        self._fields = fields
        self._needles = tuple(b'"' + f.encode() + b'":"' for f in fields)

    def encode(self, record: Record) -> bytes:
        data = orjson.dumps(record)
        if any(n in data for n in self._needles):
            data = orjson.dumps(self._walk(record, self._seal))
        return data

    def decode(self, data: bytes) -> Record:
        record = orjson.loads(data)
        if _PREFIX_BYTES in data:
            record = self._walk(record, self._open)
        return record

    def _walk(self, value: Any, change: Any) -> Any:
        if isinstance(value, dict):
            return {k: change(k, v) if k in self._fields and isinstance(v, str)
                    else self._walk(v, change) for k, v in value.items()}
        if isinstance(value, list):
            return [self._walk(v, change) for v in value]
        return value

    def _seal(self, field: str, value: str) -> str:
        if value.startswith(PREFIX):
            return value
        nonce = os.urandom(12)
        sealed = self._aeads[0].encrypt(nonce, value.encode(), field.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def _open(self, field: str, value: str) -> str:
        if not value.startswith(PREFIX):
            return value
        raw = base64.urlsafe_b64decode(value[len(PREFIX):])
        for aead in self._aeads:
            try:
                return aead.decrypt(raw[:12], raw[12:], field.encode()).decode()
            except InvalidTag:
                continue
        raise ValueError(f"a sealed {field} that no key of the keys directory opens")
