"""Animated QR payloads (reference §6.1).

Computed on the server once a second: the secret must never reach the browser, and a
frame that is not fresh is refused by the BankID app ("QR code is too old").
"""

from __future__ import annotations

import hashlib
import hmac
import math

from ...security import equal_secrets


def qr_auth_code(qr_start_secret: str, qr_time: int) -> str:
    """Lowercase hex HMAC-SHA256 keyed with the secret's own characters (not hex-decoded)."""
    return hmac.new(
        qr_start_secret.encode("utf-8"), str(qr_time).encode("ascii"), hashlib.sha256
    ).hexdigest()


def qr_payload(qr_start_token: str, qr_start_secret: str, qr_time: int) -> str:
    """`bankid.<qrStartToken>.<qrTime>.<qrAuthCode>` for whole second `qr_time`."""
    if qr_time < 0:
        raise ValueError("qr_time counts seconds since the order was received; it is never negative")
    return f"bankid.{qr_start_token}.{qr_time}.{qr_auth_code(qr_start_secret, qr_time)}"


def qr_time(received_at: float, now: float) -> int:
    """Whole seconds since the RP received the order (floor; never negative)."""
    return max(0, math.floor(now - received_at))


def qr_payload_at(qr_start_token: str, qr_start_secret: str, received_at: float, now: float) -> str:
    """The frame to show at `now` for an order received at `received_at` (epoch seconds)."""
    return qr_payload(qr_start_token, qr_start_secret, qr_time(received_at, now))


def parse_qr_payload(payload: str) -> tuple[str, int, str] | None:
    """(qrStartToken, qrTime, qrAuthCode) of a scanned string, or None if malformed."""
    parts = payload.strip().split(".")
    if len(parts) != 4 or parts[0] != "bankid" or not parts[2].isdigit():
        return None
    if len(parts[3]) != 64 or any(c not in "0123456789abcdef" for c in parts[3]):
        return None
    return parts[1], int(parts[2]), parts[3]


def verify_qr_payload(payload: str, qr_start_token: str, qr_start_secret: str) -> int | None:
    """The frame's qrTime when `payload` is a genuine frame of this order, else None."""
    parsed = parse_qr_payload(payload)
    if parsed is None:
        return None
    token, t, code = parsed
    if not equal_secrets(qr_start_token, token):
        return None
    if not equal_secrets(qr_auth_code(qr_start_secret, t), code):
        return None
    return t
