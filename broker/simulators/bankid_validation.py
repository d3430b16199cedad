"""Request validation of the simulated RP API, with the `details` strings BankID uses.

The point of the simulator is that a client bug fails here the way it would fail against
BankID's test server, so the observed strings (reference §5) are reproduced exactly;
where BankID's wording is unknown the text says what is wrong in the same terse style.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Mapping
from typing import Any

AUTH_KINDS = ("auth", "sign")
PHONE_KINDS = ("phone/auth", "phone/sign")

_PNO = re.compile(r"^\d{12}$")
_OID = re.compile(r"^\d+(\.\d+)*(\.\*)?$")
_DOMAIN = re.compile(r"^[a-z0-9.-]{3,253}$")
_ORDER_KEYS = {
    "endUserIp", "requirement", "userVisibleData", "userNonVisibleData",
    "userVisibleDataFormat", "returnUrl", "returnRisk", "web", "app",
}
_PHONE_KEYS = {
    "personalNumber", "callInitiator", "requirement", "userVisibleData",
    "userNonVisibleData", "userVisibleDataFormat",
}
_REQ_KEYS = {"pinCode", "mrtd", "cardReader", "certificatePolicies", "personalNumber"}
_PHONE_REQ_KEYS = {"pinCode", "mrtd", "cardReader", "certificatePolicies"}
_WEB_KEYS = {"deviceIdentifier", "referringDomain", "userAgent"}
_APP_KEYS = {"appIdentifier", "deviceOS", "deviceModelName", "deviceIdentifier"}


class ApiError(Exception):
    """An error answer of the RP API: HTTP status, errorCode, details."""

    def __init__(self, status: int, error_code: str, details: str,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status} {error_code}: {details}")
        self.status = status
        self.error_code = error_code
        self.details = details
        self.headers = dict(headers or {})


def invalid(details: str) -> ApiError:
    return ApiError(400, "invalidParameters", details)


def _b64_length_ok(value: Any, limit: int) -> bool:
    if not isinstance(value, str) or not 1 <= len(value) <= limit:
        return False
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _check_data(body: Mapping[str, Any], *, sign: bool, visible_required: bool,
                formats: tuple[str, ...]) -> None:
    visible_max = 40_000 if sign else 1_500
    non_visible_max = 200_000 if sign else 1_500
    if "userVisibleData" in body:
        if not _b64_length_ok(body["userVisibleData"], visible_max):
            raise invalid("Invalid userVisibleData")
    elif visible_required:
        raise invalid("Invalid userVisibleData")
    if "userNonVisibleData" in body and not _b64_length_ok(body["userNonVisibleData"],
                                                           non_visible_max):
        raise invalid("Invalid userNonVisibleData")
    if "userVisibleDataFormat" in body:
        if body["userVisibleDataFormat"] not in formats:
            raise invalid("Invalid userVisibleDataFormat")
        if "userVisibleData" not in body:
            raise invalid("Invalid userVisibleDataFormat")


def _check_requirement(req: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(req, dict):
        raise invalid("Invalid requirement")
    if set(req) - allowed:
        # Unknown keys, and `risk` which BankID no longer supports (reference §3.6).
        raise invalid("Invalid requirement")
    if "personalNumber" in req and not (
        isinstance(req["personalNumber"], str) and _PNO.match(req["personalNumber"])
    ):
        raise invalid("Incorrect personalNumber")
    if not (_flags_ok(req) and req.get("cardReader", "class1") in ("class1", "class2")
            and ("certificatePolicies" not in req or _policies_ok(req["certificatePolicies"]))):
        raise invalid("Invalid requirement")
    return dict(req)


def _flags_ok(req: dict[str, Any]) -> bool:
    return all(isinstance(req[flag], bool) for flag in ("pinCode", "mrtd") if flag in req)


def _policies_ok(pols: Any) -> bool:
    """A non-empty list of OIDs, a trailing '*' only from the fifth position on."""
    return isinstance(pols, list) and bool(pols) and all(
        isinstance(p, str) and _OID.match(p) and ("*" not in p or p.count(".") >= 4)
        for p in pols)


def _check_web(web: Any) -> None:
    if not isinstance(web, dict) or not web or set(web) - _WEB_KEYS:
        raise invalid("Invalid web")
    if not all(isinstance(v, str) and v for v in web.values()):
        raise invalid("Invalid web")
    if len(web.get("userAgent", "")) > 256 or len(web.get("deviceIdentifier", "")) > 256:
        raise invalid("Invalid web")
    if "referringDomain" in web and not _DOMAIN.match(web["referringDomain"]):
        raise invalid("Invalid web")


def _check_app(app: Any) -> None:
    if not isinstance(app, dict) or not app or set(app) - _APP_KEYS:
        raise invalid("Invalid app")
    if not all(isinstance(v, str) and v for v in app.values()):
        raise invalid("Invalid app")


def validate_order(kind: str, body: Any, *, formats: tuple[str, ...]) -> dict[str, Any]:
    """Check an /auth, /sign, /phone/auth or /phone/sign body; return its requirement."""
    if not isinstance(body, dict):
        raise invalid("Invalid request")
    sign = kind.endswith("sign")
    if kind in PHONE_KINDS:
        return _validate_phone_order(body, sign=sign, formats=formats)
    if set(body) - _ORDER_KEYS:
        raise invalid("Invalid request")
    _check_end_user_ip(body.get("endUserIp"))
    req = _check_requirement(body.get("requirement", {}), _REQ_KEYS)
    _check_data(body, sign=sign, visible_required=sign, formats=formats)
    _check_context(body)
    return req


def _check_end_user_ip(ip: Any) -> None:
    try:
        if not isinstance(ip, str):
            raise ValueError
        ipaddress.ip_address(ip)
    except ValueError:
        raise invalid("Invalid endUserIp") from None


def _check_context(body: dict[str, Any]) -> None:
    """returnUrl, returnRisk, and at most one of web and app."""
    if "returnUrl" in body:
        url = body["returnUrl"]
        if not isinstance(url, str) or not 1 <= len(url) <= 512:
            raise invalid("Invalid returnUrl")
    if "returnRisk" in body and not isinstance(body["returnRisk"], bool):
        raise invalid("Invalid returnRisk")
    if "web" in body and "app" in body:
        raise invalid("Only one of web and app may be given")
    if "web" in body:
        _check_web(body["web"])
    if "app" in body:
        _check_app(body["app"])


def _validate_phone_order(body: dict[str, Any], *, sign: bool,
                          formats: tuple[str, ...]) -> dict[str, Any]:
    if set(body) - _PHONE_KEYS:
        raise invalid("Invalid request")
    pno = body.get("personalNumber")
    if not (isinstance(pno, str) and _PNO.match(pno)):
        raise invalid("Incorrect personalNumber")
    if body.get("callInitiator") not in ("user", "RP"):
        raise invalid("Incorrect callInitiator")
    req = _check_requirement(body.get("requirement", {}), _PHONE_REQ_KEYS)
    _check_data(body, sign=sign, visible_required=sign, formats=formats)
    return req


def validate_order_ref(body: Any) -> str:
    if not isinstance(body, dict) or set(body) != {"orderRef"}:
        raise invalid("Invalid request")
    ref = body["orderRef"]
    if not isinstance(ref, str) or not ref:
        raise invalid("Invalid orderRef")
    return ref
