"""A faithful BankID RP API v6 server for demos and tests, with a test "app" page.

`create_simulator_app(settings)` returns a Starlette app serving:

- `/rp/v6.0/{auth,sign,phone/auth,phone/sign,collect,cancel}`: the RP API, strict the
  way BankID is (POST only, exact `application/json`, the real error bodies);
- `/app`: a page where a person plays the BankID app (paste a QR string, open an
  autostart token as `/app?autostarttoken=...`, pick a test person, approve or refuse);
- `/control/...`: a JSON API for tests to do the same and to inject faults.

It keeps its orders in memory, so it is one process. `broker simulator bankid` runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlsplit

import orjson
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from .bankid_engine import ENDPOINTS, BankIDSimulator, Clock, Fault, UserActionError
from .bankid_pages import CSP, CSS, JS, order_summaries, render_page
from .bankid_settings import BankIDSimulatorSettings
from .bankid_validation import AUTH_KINDS, PHONE_KINDS, ApiError, validate_order, validate_order_ref

API_PREFIX = "/rp/v6.0/"
MAX_BODY = 512 * 1024
_ERROR_CODES = {
    400: "invalidParameters",
    401: "unauthorized",
    403: "unauthorized",
    404: "notFound",
    405: "methodNotAllowed",
    408: "requestTimeout",
    415: "unsupportedMediaType",
    429: "tooManyRequests",
    500: "internalError",
    503: "maintenance",
}
_FAULT_DETAILS = {
    408: "Request timed out",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable due to maintenance",
}


def _api_json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """An RP API answer: compact UTF-8 JSON, as BankID sends (orjson: the embedded
    simulator's CPU is the broker process's in the login benchmark)."""
    return Response(orjson.dumps(data), status, headers, media_type="application/json")


def _error(exc: ApiError) -> Response:
    return _api_json({"errorCode": exc.error_code, "details": exc.details}, exc.status,
                     exc.headers)


def client_certificate(scope: dict[str, Any]) -> str | None:
    """SHA-256 (hex) of the peer certificate from the ASGI TLS extension, if any.

    The direct-TLS server puts the chain there as PEM strings, leaf first.
    """
    tls = (scope.get("extensions") or {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    if not chain:
        return None
    leaf = chain[0]
    try:
        cert = x509.load_pem_x509_certificate(leaf.encode("ascii") if isinstance(leaf, str) else leaf)
    except ValueError:
        return None
    return cert.fingerprint(hashes.SHA256()).hex()


class _Api:
    """The RP API endpoints over one `BankIDSimulator`."""

    def __init__(self, sim: BankIDSimulator) -> None:
        self.sim = sim

    async def handle(self, request: Request) -> Response:
        endpoint = request.path_params["endpoint"]
        try:
            if endpoint not in ENDPOINTS:
                raise ApiError(404, "notFound", "Not found")
            if request.method != "POST":
                raise ApiError(405, "methodNotAllowed", "Method not allowed")
            cert = self._check_client(request)
            fault = self.sim.take_fault(endpoint)
            if fault is not None:
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                if fault.status:
                    raise self._fault_error(fault.status)
            body = await self._body(request)
            return _api_json(self._dispatch(endpoint, body, cert))
        except ApiError as exc:
            return _error(exc)

    def _check_client(self, request: Request) -> str | None:
        cert = client_certificate(request.scope)
        s = self.sim.settings
        if s.require_client_cert and cert is None:
            raise ApiError(401, "unauthorized", "A client certificate is required")
        if s.allowed_client_cert_sha256 and cert not in s.allowed_client_cert_sha256:
            raise ApiError(403, "unauthorized", "The client certificate is not allowed")
        return cert

    @staticmethod
    def _fault_error(status: int) -> ApiError:
        headers = {}
        if status == 429:
            headers = {"RateLimit-Limit": "10", "RateLimit-Remaining": "0", "RateLimit-Reset": "1"}
        return ApiError(status, _ERROR_CODES.get(status, "internalError"),
                        _FAULT_DETAILS.get(status, "Simulated error"), headers)

    @staticmethod
    async def _body(request: Request) -> Any:
        # Exactly application/json: even a charset parameter is refused, as BankID does.
        if request.headers.get("content-type") != "application/json":
            raise ApiError(415, "unsupportedMediaType",
                           "Content-Type must be application/json without parameters")
        raw = await request.body()
        if len(raw) > MAX_BODY:
            raise ApiError(400, "invalidParameters", "Request too large")
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "invalidParameters", "Invalid request") from None

    def _dispatch(self, endpoint: str, body: Any, cert: str | None) -> dict[str, Any]:
        s = self.sim.settings
        formats = ("simpleMarkdownV1", "plaintext") if s.accept_plaintext_format else (
            "simpleMarkdownV1",)
        if endpoint in AUTH_KINDS or endpoint in PHONE_KINDS:
            requirement = validate_order(endpoint, body, formats=formats)
            return self.sim.create(endpoint, body, requirement, cert)
        ref = validate_order_ref(body)
        if endpoint == "collect":
            return self.sim.collect(ref, cert)
        return self.sim.cancel(ref, cert)


def _json_error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise UserActionError("the body must be a JSON object", 400) from None
    if not isinstance(body, dict):
        raise UserActionError("the body must be a JSON object", 400)
    return body


def _field(body: dict[str, Any], name: str, required: bool = True) -> Any:
    value = body.get(name)
    if required and (not isinstance(value, str) or not value):
        raise UserActionError(f"{name} is required", 400)
    if value is not None and not isinstance(value, str):
        raise UserActionError(f"{name} must be a string", 400)
    return value


Handler = Callable[[Request], Awaitable[Response]]


class ControlApi:
    """JSON endpoints that let a test play the person and the weather."""

    def __init__(self, sim: BankIDSimulator) -> None:
        self.sim = sim

    def routes(self) -> list[Route]:
        sim, action = self.sim, self._action

        def pno(body: dict[str, Any]) -> str | None:
            return _field(body, "personalNumber", required=False)

        return [
            Route("/control/orders", self.orders, methods=["GET"]),
            Route("/control/scan", action(lambda b: sim.scan(_field(b, "qr"), pno(b))),
                  methods=["POST"]),
            Route("/control/open",
                  action(lambda b: sim.open(_field(b, "autoStartToken"), pno(b))),
                  methods=["POST"]),
            Route("/control/phone", action(lambda b: sim.pick_up_phone(_field(b, "orderRef"))),
                  methods=["POST"]),
            Route("/control/select",
                  action(lambda b: sim.select(_field(b, "orderRef"), _field(b, "personalNumber"))),
                  methods=["POST"]),
            Route("/control/advance", action(lambda b: sim.advance(_field(b, "orderRef"))),
                  methods=["POST"]),
            Route("/control/approve", action(lambda b: sim.approve(_field(b, "orderRef"), pno(b))),
                  methods=["POST"]),
            Route("/control/cancel",
                  action(lambda b: sim.fail(_field(b, "orderRef"), "userCancel")),
                  methods=["POST"]),
            Route("/control/fail",
                  action(lambda b: sim.fail(_field(b, "orderRef"), _field(b, "hintCode"))),
                  methods=["POST"]),
            Route("/control/faults", self.faults, methods=["GET", "POST", "DELETE"]),
            Route("/control/reset", self.reset, methods=["POST"]),
            Route("/control/clock", self.clock, methods=["POST"]),
        ]

    def _action(self, fn: Callable[[dict[str, Any]], Any]) -> Handler:
        """A person's action on an order, answered with the order's summary."""

        async def handler(request: Request) -> Response:
            try:
                order = fn(await _json_body(request))
            except UserActionError as exc:
                return _json_error(str(exc), exc.status)
            except ValueError as exc:
                return _json_error(str(exc), 400)
            return JSONResponse(order.summary(self.sim.clock()) if order is not None else {})

        return handler

    async def orders(self, request: Request) -> Response:
        now = self.sim.tick()
        return JSONResponse({"orders": order_summaries(list(self.sim.orders.values()), now)})

    async def faults(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.sim.faults.clear()
        elif request.method == "POST":
            try:
                body = await _json_body(request)
                self.sim.set_fault(_field(body, "endpoint"), _fault(body))
            except UserActionError as exc:
                return _json_error(str(exc), exc.status)
            except ValueError as exc:
                return _json_error(str(exc), 400)
        return JSONResponse({k: f.to_json() for k, f in self.sim.faults.items()})

    async def reset(self, request: Request) -> Response:
        self.sim.reset()
        return JSONResponse({})

    async def clock(self, request: Request) -> Response:
        """Simulated time jumps forward (only on a `SimulatedClock`, i.e. in tests)."""
        advance = getattr(self.sim.clock, "advance", None)
        if advance is None:
            return _json_error("this simulator runs on the real clock", 409)
        try:
            body = await _json_body(request)
            seconds = body.get("advance")
            if not isinstance(seconds, int | float) or not 0 <= seconds <= 3600:
                raise UserActionError("advance must be 0-3600 seconds", 400)
        except UserActionError as exc:
            return _json_error(str(exc), exc.status)
        advance(float(seconds))
        return JSONResponse({"now": self.sim.tick()})


def _fault(body: dict[str, Any]) -> Fault:
    """The fault a test asks for: an HTTP error status, a delay, how many times."""
    status = body.get("status")
    if status is not None and (not isinstance(status, int) or not 400 <= status <= 599):
        raise UserActionError("status must be an HTTP error status", 400)
    delay = body.get("delay", 0)
    times = body.get("times", 1)
    if not isinstance(delay, int | float) or delay < 0 or delay > 120:
        raise UserActionError("delay must be 0-120 seconds", 400)
    if times is not None and (not isinstance(times, int) or times < 1):
        raise UserActionError("times must be a positive count or null", 400)
    return Fault(status=status, delay=float(delay), times=times)


def _safe_redirect(url: str | None) -> str | None:
    """Where the app returns to after approving: only absolute http(s) URLs."""
    if not url or url == "null":
        return None
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None


# What the app's buttons do to an order: the hint code a person's refusal ends it with.
_REFUSALS = {"cancel": "userCancel", "decline": "userDeclinedCall", "block": "certificateErr",
             "oldapp": "notSupportedByUserApp"}


class TestApp:
    """The human-facing test app."""

    __test__ = False  # not a pytest class, whatever its name

    def __init__(self, sim: BankIDSimulator) -> None:
        self.sim = sim

    def routes(self) -> list[Route]:
        return [
            Route("/", self.root, methods=["GET"]),
            Route("/app", self.app_page, methods=["GET"]),
            Route("/app/action", self.app_action, methods=["POST"]),
            Route("/app/static/app.css", self.css, methods=["GET"]),
            Route("/app/static/app.js", self.js, methods=["GET"]),
        ]

    @staticmethod
    def _base(request: Request) -> str:
        return request.scope.get("root_path", "").rstrip("/")

    @staticmethod
    def _page(html: str, status: int = 200) -> Response:
        return Response(html, status_code=status, media_type="text/html; charset=utf-8",
                        headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store",
                                 "Referrer-Policy": "no-referrer"})

    async def app_page(self, request: Request) -> Response:
        sim = self.sim
        now = sim.tick()
        token = request.query_params.get("autostarttoken")
        flash = request.query_params.get("msg")
        error = request.query_params.get("error") == "1"
        focus = None
        status = 200
        if token:
            order = next((o for o in sim.orders.values() if o.auto_start_token == token), None)
            if order is None:
                flash, error, status = "Unknown or expired autostart token.", True, 404
            else:
                if order.live and order.via is None:
                    sim.open(token)  # launching the app with the token is the pick-up
                focus = order
        html = render_page(self._base(request), orders=list(sim.orders.values()), now=now,
                           persons=sim.settings.persons, flash=flash, error=error,
                           focus=focus, redirect=request.query_params.get("redirect"))
        return self._page(html, status)

    async def app_action(self, request: Request) -> Response:
        form = await request.form()
        back = f"{self._base(request)}/app"
        try:
            msg, target = self._act({k: v for k, v in form.items() if isinstance(v, str)})
        except UserActionError as exc:
            return RedirectResponse(f"{back}?error=1&msg={quote(str(exc).capitalize() + '.')}",
                                    status_code=303)
        if target:
            return RedirectResponse(target, status_code=303)
        return RedirectResponse(f"{back}?msg={quote(msg)}", status_code=303)

    def _act(self, form: dict[str, str]) -> tuple[str, str | None]:
        """Do what the person pressed; the message to show, or where the app returns to."""
        sim = self.sim
        act = form.get("action", "")
        ref = form.get("orderRef", "")
        who = form.get("personalNumber", "") or None
        if act == "scan":
            sim.scan(form.get("qr", ""), who)
            return "QR code scanned; choose approve or cancel below.", None
        if act == "approve":
            order = sim.approve(ref, who)
            msg = f"Approved as {order.person.name if order.person else who}."
            return_url = order.body.get("returnUrl")
            target = _safe_redirect(return_url) or _safe_redirect(form.get("redirect") or None)
            if return_url and not target:  # another browser's scheme: the real app hands it to iOS
                msg += f" The app now opens {return_url}"
            return msg, target
        if act == "advance":
            sim.advance(ref)
            return "Confirmed.", None
        if act in _REFUSALS:
            sim.fail(ref, _REFUSALS[act])
            return f"Order ended: {_REFUSALS[act]}.", None
        raise UserActionError("unknown action", 400)

    async def css(self, request: Request) -> Response:
        return Response(CSS, media_type="text/css")

    async def js(self, request: Request) -> Response:
        return Response(JS, media_type="text/javascript")

    async def root(self, request: Request) -> Response:
        return RedirectResponse(f"{self._base(request)}/app", status_code=303)


def create_simulator_app(
    settings: BankIDSimulatorSettings | None = None, *, clock: Clock | None = None
) -> Starlette:
    """The simulator as an ASGI app; `app.state.simulator` is its `BankIDSimulator`."""
    sim = BankIDSimulator(settings or BankIDSimulatorSettings(), clock=clock or time.time)
    api = _Api(sim)
    routes = [
        Route(API_PREFIX + "{endpoint:path}", api.handle,
              methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
        *ControlApi(sim).routes(),
        *TestApp(sim).routes(),
    ]
    app = Starlette(routes=routes)
    app.state.simulator = sim
    return app


def main(argv: list[str] | None = None) -> int:
    """`broker simulator bankid [--host H] [--port N]`: run the simulator with uvicorn."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="broker simulator bankid",
                                     description="Run the BankID RP API v6 simulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--config", help="broker YAML; connectors.bankid.simulator is used")
    parser.add_argument("--auto-approve", metavar="PNO",
                        help="complete every order as this test person")
    parser.add_argument("--auto-approve-delay", type=float, metavar="SECONDS")
    parser.add_argument("--certfile", help="server certificate (PEM) to serve HTTPS")
    parser.add_argument("--keyfile", help="server private key (PEM)")
    parser.add_argument("--client-ca", help="require client certificates issued by this CA")
    args = parser.parse_args(argv)

    try:
        settings = _settings(args)
    except ValueError as exc:
        parser.exit(2, f"broker simulator bankid: {exc}\n")
    ssl_options: dict[str, Any] = {}
    if args.certfile:
        import ssl

        ssl_options = {"ssl_certfile": args.certfile, "ssl_keyfile": args.keyfile}
        if args.client_ca:
            ssl_options.update(ssl_ca_certs=args.client_ca, ssl_cert_reqs=ssl.CERT_REQUIRED)
    uvicorn.run(create_simulator_app(settings), host=args.host, port=args.port,
                log_level="info", **ssl_options)
    return 0


def _settings(args: argparse.Namespace) -> BankIDSimulatorSettings:
    data: dict[str, Any] = {}
    if args.config:
        from ..config import ConfigError, load_settings

        try:
            loaded = load_settings(args.config)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        bankid = loaded.connectors.bankid
        if bankid is not None:
            data = dict(bankid.simulator or {})
    if args.auto_approve:
        data["auto_approve"] = args.auto_approve
    if args.auto_approve_delay is not None:
        data["auto_approve_delay"] = args.auto_approve_delay
    from pydantic import ValidationError

    try:
        return BankIDSimulatorSettings.model_validate(data)
    except ValidationError as exc:
        raise ValueError("; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        )) from None
