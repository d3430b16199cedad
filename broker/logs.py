"""Operational logs: JSON lines with a request id, uvicorn's access log included.

Every line is one JSON object (`time level logger message`, plus `request_id` and `client`
inside a request), so a log store can index it without parsing rules. The request id comes
from a trusted proxy's `X-Request-ID` when it is well formed, otherwise it is made here; it
goes back in the response header so a person's support call can be matched to the lines.

Ordinary logs carry no secrets and no personal identity numbers: access lines hold the path
without its query (authorization requests carry `login_hint`), and every message is scrubbed
of anything shaped like a personal number or a credential parameter. The audit log
(`audit.py`) is the only place that keeps who logged in, in full.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import time
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .security import resolved_client

if TYPE_CHECKING:
    from .security import TrustedProxies

REQUEST_ID_HEADER = b"x-request-id"
_WELL_FORMED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{7,127}$")

_request: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "broker_request", default=None)


def current_request_id() -> str | None:
    ctx = _request.get()
    return ctx["request_id"] if ctx else None


def new_request_id() -> str:
    return secrets.token_hex(16)


class RequestContext:
    """Pure ASGI: picks the request id, puts it in the log context and the response.

    An incoming X-Request-ID is taken only from a trusted proxy and only when well formed;
    anyone else could use it to forge or flood the ids that tie log lines together.
    """

    def __init__(self, app: ASGIApp, *, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        peer = scope["client"][0] if scope.get("client") else None
        incoming = [v for k, v in scope["headers"] if k == REQUEST_ID_HEADER]
        request_id = None
        if len(incoming) == 1 and self.proxies.trusted(peer):
            value = incoming[0].decode("latin-1")
            if _WELL_FORMED.match(value):
                request_id = value
        request_id = request_id or new_request_id()
        scope["broker.request_id"] = request_id
        # Each request runs in its own task (a copy of the context): no reset needed, and
        # the id stays set for uvicorn's access line and for error handlers outside us.
        _request.set({"request_id": request_id, "client": resolved_client(scope) or "-"})
        header = (REQUEST_ID_HEADER, request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != REQUEST_ID_HEADER]
                headers.append(header)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)


# -- scrubbing -----------------------------------------------------------------------------
_PERSONAL_NUMBER = re.compile(r"(?<!\d)((?:19|20)\d{6})[-+]?\d{4}(?!\d)")
_CREDENTIAL = re.compile(
    r"(?i)\b(code|token|access_token|refresh_token|id_token|id_token_hint|logout_token|"
    r"client_secret|client_assertion|password|secret|login_hint)=([^&\s\"',;]+)")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")


def scrub(text: str) -> str:
    """Mask personal identity numbers and credential-looking parameters."""
    text = _PERSONAL_NUMBER.sub(lambda m: m.group(1) + "****", text)
    text = _CREDENTIAL.sub(lambda m: m.group(1) + "=***", text)
    return _BEARER.sub(lambda m: m.group(1) + " ***", text)


# -- formatting ----------------------------------------------------------------------------
class JsonFormatter(logging.Formatter):
    """One JSON object per line; the request context is added when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        out.update(self.fields(record))
        ctx = _request.get()
        if ctx:
            out.setdefault("request_id", ctx["request_id"])
            out.setdefault("client", ctx["client"])
        if record.exc_info:
            out["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False, separators=(",", ":"), default=str)

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        return {"message": scrub(record.getMessage())}


class AccessFormatter(JsonFormatter):
    """uvicorn's access line (`client method path version status`) as JSON fields."""

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        args = record.args if isinstance(record.args, tuple) else ()
        if len(args) != 5:
            return super().fields(record)
        client, method, path, version, status = args
        ctx = _request.get()
        return {
            "message": "request",
            "method": method,
            "path": scrub(str(path).split("?", 1)[0]),
            "status": status,
            "http_version": version,
            "client": ctx["client"] if ctx else client,
        }


def _timestamp(created: float) -> str:
    ms = int((created % 1) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{ms:03d}Z"


def log_config(level: str = "info") -> dict[str, Any]:
    """`logging.config.dictConfig` for `broker serve` (and uvicorn's `log_config`).

    Everything goes to stderr as JSON lines; stdout stays for the audit events.
    """
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {"()": "broker.logs.JsonFormatter"},
            "access": {"()": "broker.logs.AccessFormatter"},
        },
        "handlers": {
            "default": {"class": "logging.StreamHandler", "formatter": "json",
                        "stream": "ext://sys.stderr"},
            "access": {"class": "logging.StreamHandler", "formatter": "access",
                       "stream": "ext://sys.stderr"},
        },
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": ["access"], "level": level, "propagate": False},
        },
    }
