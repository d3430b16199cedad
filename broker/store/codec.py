"""How records look at rest: JSON, with personal identity numbers sealed.

Transactions, sessions, codes and grants carry a person's identity number while a login
is under way and for as long as tokens may need it in a claim. At rest (Redis, a dump of
it, a replica, a backup) it must not be readable. Rather than every module remembering to
encrypt, the store's codec seals the value of every field that holds one, wherever in a
record it sits, with AES-GCM under a key derived from the keys directory (never kept in
Redis), and opens it again on read. Code keeps working with plain records.

Only records that name such a field pay for it: the check is a substring search over the
encoded bytes (C speed); the sealing and opening happen only on a hit, in place.
"""

from __future__ import annotations

import base64
import os
import re
from typing import Protocol

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
    (the shared secret's rotation).

    It works on the encoded bytes: a regular expression finds `"field":"value"` and only
    the matches are sealed or opened, so the record is never walked in Python (walking a
    grant, with its user and assignments, was a tenth of a code redemption). A quote
    inside a JSON string is always escaped, so the pattern cannot match inside a value."""

    def __init__(self, keys: list[bytes], fields: frozenset[str] = SEALED_FIELDS) -> None:
        if not keys:
            raise ValueError("no key to seal records with")
        self._aeads = [AESGCM(k) for k in keys]
        names = b"|".join(re.escape(f.encode()) for f in sorted(fields))
        self._plain = re.compile(rb'"(' + names + rb')":"((?:[^"\\]|\\.)*)"')
        self._sealed = re.compile(rb'"(' + names + rb')":"' + PREFIX.encode()
                                  + rb'([A-Za-z0-9_=-]+)"')
        self._any = re.compile(rb'"(?:' + names + rb')":"')

    def encode(self, record: Record) -> bytes:
        data = orjson.dumps(record)
        if self._any.search(data):
            data = self._plain.sub(self._seal, data)
        return data

    def decode(self, data: bytes) -> Record:
        if _PREFIX_BYTES in data:
            data = self._sealed.sub(self._open, data)
        return orjson.loads(data)

    def _seal(self, match: re.Match[bytes]) -> bytes:
        field, raw = match.group(1), match.group(2)
        if raw.startswith(PREFIX.encode()):
            return match.group(0)
        value: str = orjson.loads(b'"' + raw + b'"')
        nonce = os.urandom(12)
        sealed = self._aeads[0].encrypt(nonce, value.encode(), field)
        return b'"%s":"%s%s"' % (field, PREFIX.encode(), base64.urlsafe_b64encode(nonce + sealed))

    def _open(self, match: re.Match[bytes]) -> bytes:
        field, raw = match.group(1), base64.urlsafe_b64decode(match.group(2))
        for aead in self._aeads:
            try:
                value = aead.decrypt(raw[:12], raw[12:], field).decode()
            except InvalidTag:
                continue
            return b'"%s":%s' % (field, orjson.dumps(value))
        raise ValueError(f"a sealed {field.decode()} that no key of the keys directory opens")
