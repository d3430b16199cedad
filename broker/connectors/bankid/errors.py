"""Typed errors of the RP API (reference §5), one class per documented errorCode.

BankID may add error codes without notice, so an unknown one becomes `UnknownBankIDError`
(shown as RFA22) instead of crashing the login page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal


class BankIDError(Exception):
    """BankID answered with an error, or could not be reached.

    `details` is BankID's free text: for the log only, never shown to a person.
    """

    error_code: str = "unknown"

    def __init__(self, details: str = "", *, http_status: int | None = None,
                 error_code: str | None = None) -> None:
        if error_code is not None:
            self.error_code = error_code
        super().__init__(f"{self.error_code}: {details}" if details else self.error_code)
        self.details = details
        self.http_status = http_status


class AlreadyInProgress(BankIDError):
    """The person already has an order under way (no new order was created)."""

    error_code = "alreadyInProgress"


class InvalidParameters(BankIDError):
    """A bad request from us: a bug, or an order that is gone (collected, cancelled, expired)."""

    error_code = "invalidParameters"

    @property
    def no_such_order(self) -> bool:
        return "no such order" in self.details.lower()


class Unauthorized(BankIDError):
    """Our RP certificate is not allowed to use the service."""

    error_code = "unauthorized"


class NotFound(BankIDError):
    error_code = "notFound"


class MethodNotAllowed(BankIDError):
    error_code = "methodNotAllowed"


class RequestTimeout(BankIDError):
    """BankID gave up waiting for our request body."""

    error_code = "requestTimeout"


class UnsupportedMediaType(BankIDError):
    error_code = "unsupportedMediaType"


class TooManyRequests(BankIDError):
    """Rate limited; `reset` is how many seconds to back off (RateLimit-Reset), if given."""

    error_code = "tooManyRequests"

    def __init__(self, details: str = "", *, http_status: int | None = None,
                 error_code: str | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(details, http_status=http_status, error_code=error_code)
        headers = headers or {}
        self.limit = _int(headers.get("ratelimit-limit"))
        self.remaining = _int(headers.get("ratelimit-remaining"))
        self.reset = _int(headers.get("ratelimit-reset"))


class InternalError(BankIDError):
    error_code = "internalError"


class Maintenance(BankIDError):
    """BankID is temporarily unavailable; the only error that may be retried silently."""

    error_code = "maintenance"


class UnknownBankIDError(BankIDError):
    """An errorCode this code does not know (or an error without a readable body)."""


class BankIDConnectionError(BankIDError):
    """No usable answer: connection refused, TLS failure, or a body that is not JSON."""

    error_code = "connectionError"


class BankIDTimeout(BankIDConnectionError):
    """BankID did not answer within our timeouts (counted apart from refused connections:
    a slow BankID and an unreachable one call for different operator action)."""

    error_code = "timeout"


ERRORS: dict[str, type[BankIDError]] = {
    cls.error_code: cls
    for cls in (
        AlreadyInProgress,
        InvalidParameters,
        Unauthorized,
        NotFound,
        MethodNotAllowed,
        RequestTimeout,
        UnsupportedMediaType,
        TooManyRequests,
        InternalError,
        Maintenance,
    )
}

# errorCodes that mean our own integration is broken: never presented as a BankID problem.
INTERNAL_ERROR_CODES = frozenset(
    {"invalidParameters", "unauthorized", "notFound", "methodNotAllowed", "unsupportedMediaType"}
)


# What an error says about BankID, for the person's HTTP status, the log and the metrics.
# Everything but `person` is a fault upstream of us (or in our own integration): the page is
# a retryable 503 and the log line is an error, so that alerting on 5xx sees a BankID outage.
FaultKind = Literal["person", "rate_limited", "timeout", "unavailable", "integration"]
_KINDS: dict[str, FaultKind] = {
    "alreadyInProgress": "person",
    "tooManyRequests": "rate_limited",
    "timeout": "timeout",
    "requestTimeout": "timeout",
    **{code: "integration" for code in INTERNAL_ERROR_CODES},
}


def fault_kind(error_code: str | None) -> FaultKind:
    """`person` for the person's own situation (RFA4), else which upstream fault it is."""
    return _KINDS.get(error_code or "", "unavailable")


def error_from_response(status: int, body: object, headers: Mapping[str, str]) -> BankIDError:
    """The typed error for an HTTP error answer from BankID."""
    code = details = None
    if isinstance(body, dict):
        code = body.get("errorCode") if isinstance(body.get("errorCode"), str) else None
        details = body.get("details") if isinstance(body.get("details"), str) else None
    if code is None and status == 503:
        code = "maintenance"
    cls = ERRORS.get(code or "")
    if cls is TooManyRequests:
        return TooManyRequests(details or "", http_status=status, headers=headers)
    if cls is not None:
        return cls(details or "", http_status=status)
    return UnknownBankIDError(details or f"HTTP {status}", http_status=status,
                              error_code=code or "unknown")


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
