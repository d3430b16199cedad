"""Web hygiene every response gets, and the small security primitives pages share:
security headers, body limits, cookies, CSRF tokens, and the client address behind
trusted proxies only."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

BROWSER_COOKIE = "broker_b"


def origins(urls: Iterable[str]) -> list[str]:
    out = []
    for url in urls:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in out:
            out.append(origin)
    return out


def content_security_policy(form_targets: Iterable[str]) -> str:
    """No inline script or style anywhere; forms may post to us and, because Chromium
    checks form-action on redirects too, to the registered relying parties."""
    form_action = " ".join(["'self'", *origins(form_targets)])
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self'; form-action {form_action}; frame-ancestors 'none'; "
        "base-uri 'none'"
    )


def hygiene_headers(csp: str, hsts: bool) -> list[tuple[bytes, bytes]]:
    """The headers every response carries (SecurityHeaders adds them, and the handler of
    unexpected errors, which Starlette runs outside every middleware)."""
    headers = [
        (b"content-security-policy", csp.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
        (b"cross-origin-opener-policy", b"same-origin"),
    ]
    if hsts:
        headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
    return headers


class SecurityHeaders:
    """Pure ASGI (no BaseHTTPMiddleware overhead on the token endpoint's hot path).

    The body limit is ours: Starlette has none, and uvicorn bounds headers and incomplete
    events, not a body; a chunked body must be counted as it arrives."""

    def __init__(self, app: ASGIApp, *, csp: str, hsts: bool, max_body: int) -> None:
        self.app = app
        self.max_body = max_body
        self.headers = hygiene_headers(csp, hsts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body:
                await Response("Request body too large", 413, media_type="text/plain")(
                    scope, receive, send
                )
                return

        extra = self.headers
        seen = 0
        limit = self.max_body

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge
            return message

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = list(message.get("headers", []))
                present = {k.lower() for k, _ in raw}
                raw.extend(h for h in extra if h[0] not in present)
                if b"cache-control" not in present:
                    raw.append((b"cache-control", b"no-store"))
                message["headers"] = raw
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except BodyTooLarge:
            await Response("Request body too large", 413, media_type="text/plain")(
                scope, receive, send_with_headers
            )


class BodyTooLarge(Exception):
    pass


def proxy_network(item: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A network whose peers may speak for the client (X-Forwarded-*, a certificate header).
    Never every address (/0): any caller could then claim any client address or scheme, or
    hand in a certificate. Raises ValueError with a message for the settings."""
    try:
        net = ipaddress.ip_network(item, strict=False)
    except ValueError:
        raise ValueError(f"{item!r} is not an IP address or CIDR network") from None
    if net.prefixlen == 0:
        raise ValueError(f"{item!r} would trust every address; name the proxies' networks")
    return net


class TrustedProxies:
    """Forwarded headers count only when the TCP peer is a configured proxy.

    The one implementation of that rule: `ForwardedHeaders` (every request, for logs and
    `request.url`) and `client_ip` both go through `resolve`.
    """

    def __init__(self, networks: Iterable[str]) -> None:
        self.networks = [ipaddress.ip_network(n, strict=False) for n in networks]

    def trusted(self, address: str | None) -> bool:
        if not address or not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.networks)

    def resolve(self, peer: str, forwarded_for: str | None) -> str:
        """The client address: the peer itself unless it is one of our proxies."""
        if not self.trusted(peer):
            return peer
        hops = [h.strip() for h in (forwarded_for or "").split(",") if h.strip()]
        # Walk from the nearest hop outwards; the first address not ours is the client.
        for hop in reversed(hops):
            if not self.trusted(hop):
                try:
                    return str(ipaddress.ip_address(hop))
                except ValueError:
                    return peer
        return hops[0] if hops else peer

    def scheme(self, peer: str | None, forwarded_proto: str | None, default: str) -> str:
        """`X-Forwarded-Proto` from a proxy of ours (nearest hop), else what we saw."""
        if not forwarded_proto or not self.trusted(peer):
            return default
        proto = forwarded_proto.split(",")[-1].strip().lower()
        return proto if proto in ("http", "https") else default

    def client_ip(self, request: Request) -> str:
        resolved = resolved_client(request.scope)
        if resolved is not None:
            return resolved
        peer = request.client.host if request.client else "127.0.0.1"
        return self.resolve(peer, request.headers.get("x-forwarded-for"))


RESOLVED_CLIENT = "broker.client"


def resolved_client(scope: Scope) -> str | None:
    """The client address `ForwardedHeaders` worked out for this request, if it ran."""
    return scope.get(RESOLVED_CLIENT)


class ForwardedHeaders:
    """Pure ASGI: client address and scheme from X-Forwarded-For/-Proto, trusted peers only.

    The scheme is rewritten in the scope (so `request.url` and redirects say https behind a
    TLS-terminating proxy). The client address goes to `scope["broker.client"]` (what
    `TrustedProxies.client_ip` and the logs use) while `scope["client"]` stays the TCP
    peer: the SITHS certificate intake must ask "did this header come from our proxy",
    which only the TCP peer answers (see connectors/siths/intake.py).
    """

    def __init__(self, app: ASGIApp, *, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            peer = client[0] if client else ""
            forwarded_for = forwarded_proto = None
            for name, value in scope["headers"]:
                if name == b"x-forwarded-for":
                    # Repeated headers are one list (RFC 9110 5.3).
                    text = value.decode("latin-1")
                    forwarded_for = f"{forwarded_for},{text}" if forwarded_for else text
                elif name == b"x-forwarded-proto":
                    forwarded_proto = value.decode("latin-1")
            scope[RESOLVED_CLIENT] = self.proxies.resolve(peer, forwarded_for) if peer else None
            if scope["type"] == "http":
                scope["scheme"] = self.proxies.scheme(peer, forwarded_proto, scope.get("scheme", "http"))
        await self.app(scope, receive, send)


class Cookies:
    """`__Host-` cookies, Secure and HttpOnly; on a plain-http localhost issuer (demo)
    the browser refuses both, so the prefix and Secure are dropped there only."""

    def __init__(self, secure: bool) -> None:
        self.secure = secure

    def name(self, base: str) -> str:
        return f"__Host-{base}" if self.secure else base

    def get(self, request: Request, base: str) -> str | None:
        return request.cookies.get(self.name(base))

    def set(self, response: Response, base: str, value: str, max_age: int | None = None,
            samesite: str = "lax") -> None:
        response.set_cookie(
            self.name(base), value, max_age=max_age, path="/", secure=self.secure,
            httponly=True, samesite=samesite,  # type: ignore[arg-type]
        )

    def clear(self, response: Response, base: str) -> None:
        response.delete_cookie(self.name(base), path="/", secure=self.secure, httponly=True,
                               samesite="lax")


def browser_id(request: Request, cookies: Cookies) -> tuple[str, bool]:
    """The browser's binding value and whether it is new (then the caller sets it)."""
    value = cookies.get(request, BROWSER_COOKIE)
    if value and 20 <= len(value) <= 64:
        return value, False
    return secrets.token_urlsafe(24), True


def browser_digest(value: str) -> str:
    return hashlib.sha256(b"browser|" + value.encode()).hexdigest()


class CsrfTokens:
    """The one CSRF mechanism of every form we serve (login steps, BankID, logout, admin).

    A form's token is an HMAC of what the form belongs to (a login transaction, a browser,
    an admin session) under a key derived from the keys directory's shared secret, so every
    replica makes and checks the same token and nothing needs to be stored; the check is
    in constant time. A key kept in the store instead would be made anew when Redis loses
    its data, and pages served by one replica would then fail their check on another.
    """

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def token(self, binding: str) -> str:
        return hmac.new(self._secret, binding.encode(), hashlib.sha256).hexdigest()[:40]

    def valid(self, binding: str, given: object) -> bool:
        """Whether `given` (a form value: any type, possibly missing) is the token."""
        return isinstance(given, str) and bool(given) and equal_secrets(self.token(binding), given)


def equal_secrets(expected: str, given: str) -> bool:
    """Constant-time comparison of a secret with what a caller sent. On bytes: comparing
    `str`s raises TypeError for any non-ASCII character, which a caller controls."""
    return hmac.compare_digest(expected.encode("utf-8", "surrogatepass"),
                               given.encode("utf-8", "surrogatepass"))
