"""The limits `broker serve` puts on every connection, which uvicorn does not enforce itself.

uvicorn (with httptools, its default) accepted a 1 MB header, 5,000 header fields, a request
head that trickles in forever and a body that never completes, each holding memory or a
connection for as long as the client liked. Here, per connection (`http.*` settings):

- the request line and headers: at most `max_header_bytes` bytes and `max_header_fields`
  fields (431), complete within `header_timeout` seconds of their first byte (408);
- the body: complete within `body_timeout` seconds of the end of the headers (408; the
  application then sees the client as gone);
- an idle connection, before its first request as after a response, is closed after
  `keep_alive_timeout` seconds (uvicorn only did the latter).

A refused request gets a short plain-text answer, then the connection half-closes and what
the client still sends is read and dropped for at most `LINGER` seconds, so that it sees
the status instead of a reset. The subclass uses uvicorn's httptools protocol hooks; the
hooks it needs are checked at import, and tests/hardening/test_server_limits.py runs a real
`broker serve` against each limit.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

log = logging.getLogger("broker.http")

#: Seconds a refused connection is drained before it is closed.
LINGER = 2.0

_HOOKS = ("connection_made", "data_received", "on_message_begin", "on_url", "on_header",
          "on_headers_complete", "on_message_complete", "send_400_response",
          "timeout_keep_alive_handler", "_unset_keepalive_if_required")
_missing = [h for h in _HOOKS if not callable(getattr(HttpToolsProtocol, h, None))]
if _missing:  # pragma: no cover - a uvicorn release that changed its protocol
    raise ImportError(f"uvicorn {uvicorn.__version__}: HttpToolsProtocol lacks {_missing}; "
                      "broker.http_limits must be updated for it")


@dataclass(frozen=True)
class ServerLimits:
    max_header_bytes: int = 16 * 1024
    max_header_fields: int = 100
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    keep_alive_timeout: int = 5


class LimitsConfig(uvicorn.Config):
    """uvicorn's Config with our limits; pickled as it is to every worker process."""

    def __init__(self, app: Any, *, limits: ServerLimits, **kwargs: Any) -> None:
        kwargs.setdefault("http", "broker.http_limits:LimitedHttpToolsProtocol")
        kwargs.setdefault("timeout_keep_alive", limits.keep_alive_timeout)
        super().__init__(app, **kwargs)
        self.limits = limits


class _Refused(Exception):
    """Raised inside a parser callback: httptools stops and uvicorn calls send_400_response."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.limits: ServerLimits = getattr(config, "limits", ServerLimits())
        self._in_head = True      # between requests or inside a request line and headers
        self._head_bytes = 0      # counted by the parser callbacks
        self._raw_head = 0        # bytes received while in the head (a field still buffered)
        self._fields = 0
        self._timer: asyncio.TimerHandle | None = None
        self._refusal: tuple[int, bytes] | None = None
        self._draining = False

    # -- connection ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # uvicorn arms its keep-alive timer only after a response: an idle new connection
        # would stay open for ever. Any byte cancels it (uvicorn's data_received does).
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._draining:
            return
        if self._in_head:
            self._raw_head += len(data)
        super().data_received(data)
        if self._in_head and self._raw_head > self.limits.max_header_bytes and not self._draining:
            self._refuse(431, b"Request header fields too large")

    # -- parser callbacks ----------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_bytes, self._fields = True, 0, 0
        self._arm(self.limits.header_timeout)

    def on_url(self, url: bytes) -> None:
        self._count(len(url), 0)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4, 1)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head, self._raw_head = False, 0
        self._disarm()
        super().on_headers_complete()
        if not self.pipeline:  # a queued request cannot send its body until it runs
            self._arm(self.limits.body_timeout)

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head, self._raw_head = True, 0
        super().on_message_complete()

    def _count(self, size: int, fields: int) -> None:
        self._head_bytes += size
        self._fields += fields
        if self._fields > self.limits.max_header_fields:
            self._refusal = (431, b"Too many request header fields")
        elif self._head_bytes > self.limits.max_header_bytes:
            self._refusal = (431, b"Request header fields too large")
        if self._refusal is not None:
            raise _Refused

    def send_400_response(self, msg: str) -> None:
        if self._refusal is None:
            super().send_400_response(msg)  # a request httptools cannot parse
            return
        status, reason = self._refusal
        self._refuse(status, reason)

    # -- timers and refusals -------------------------------------------------------------
    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, self._timed_out)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self) -> None:
        self._timer = None
        part = b"headers" if self._in_head else b"body"
        self._refuse(408, b"The request " + part + b" did not arrive in time")

    def _refuse(self, status: int, reason: bytes) -> None:
        if self._draining or self.transport.is_closing():
            return
        self._draining = True
        self._disarm()
        self._unset_keepalive_if_required()
        cycle: RequestResponseCycle | None = self.cycle
        answered = cycle is not None and cycle.response_started and not self._in_head
        if cycle is not None and not cycle.response_complete:
            # The application (if it runs) sees the client as gone and its answer is dropped.
            cycle.disconnected = True
            cycle.message_event.set()
        peer = self.client[0] if self.client else "?"
        log.warning("refused a request from %s: %d %s", peer, status, reason.decode())
        if not answered:
            self.transport.write(_response(status, reason, self.server_state.default_headers))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER, self.transport.close)


def _response(status: int, reason: bytes, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    phrases = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}
    lines = [b"HTTP/1.1 %d %s" % (status, phrases[status])]
    lines += [name + b": " + value for name, value in default_headers]
    lines += [b"content-type: text/plain; charset=utf-8", b"content-length: %d" % len(reason),
              b"connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n" + reason
