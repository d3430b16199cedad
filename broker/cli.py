"""The `broker` command: serve, demo, keys, authz, simulator, check-config."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .config import ConfigError, Settings, load_settings


def _settings(path: str) -> Settings:
    return load_settings(path)


def cmd_check_config(args: argparse.Namespace) -> int:
    from .app import check_default_acr, configured_acr_values, open_authorization, open_keyring
    from .config import refuse_test_only

    settings = _settings(args.config)
    refuse_test_only(settings)
    check_default_acr(settings, configured_acr_values(settings))
    bankid = settings.connectors.bankid
    if bankid is not None and bankid.environment == "simulator":  # loopback issuer only
        from .simulators.bankid_settings import from_config

        from_config(bankid.simulator, settings.source)
    if not settings.keys.generate:
        open_keyring(settings)
    if settings.authorization.source == "file":
        # The file is part of the configuration: missing or broken stops start-up too.
        open_authorization(settings)
    print(f"{args.config}: OK ({len(settings.clients)} clients, store {settings.store.url.split('://')[0]})")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    return serve(args, factory="broker.app:app_from_env")


def serve(args: argparse.Namespace, *, factory: str) -> int:
    """Run `factory` (an app factory reading BROKER_CONFIG) under uvicorn, in production form.

    JSON logs (uvicorn's access log too), Prometheus metrics of every worker on
    `metrics.port` from this supervisor process, and a graceful stop on SIGTERM: uvicorn
    stops accepting, finishes requests in flight within `http.graceful_shutdown_seconds`,
    runs the lifespan shutdown (store and HTTP pools closed) and we exit 0.
    """
    import logging.config
    import os
    import signal

    import uvicorn
    from uvicorn.importer import import_from_string
    from uvicorn.supervisors import Multiprocess

    from . import logs, metrics
    from .http_limits import LimitsConfig, ServerLimits

    log_config = logs.log_config(args.log_level)
    logging.config.dictConfig(log_config)
    settings = _settings(args.config)
    os.environ["BROKER_CONFIG"] = os.path.abspath(args.config)
    with metrics.multiprocess_mode():  # before any metric exists, so workers inherit it
        import_from_string(factory)()  # validate everything (keys, source, connectors) first
        with metrics.metrics_server(args.host, settings.metrics.port):
            # uvicorn re-raises the SIGTERM it handled once it has shut down; with this
            # handler in place that ends the process normally (exit 0), not by the signal.
            signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
            http = settings.http
            config = LimitsConfig(
                factory, factory=True, host=args.host, port=args.port, workers=args.workers,
                proxy_headers=False, server_header=False,
                timeout_graceful_shutdown=args.graceful_timeout or http.graceful_shutdown_seconds,
                log_level=args.log_level, log_config=log_config, access_log=True,
                limits=ServerLimits(max_header_bytes=http.max_header_bytes,
                                    max_header_fields=http.max_header_fields,
                                    header_timeout=http.header_timeout,
                                    body_timeout=http.body_timeout,
                                    keep_alive_timeout=http.keep_alive_timeout))
            # What uvicorn.run does, with our Config (it cannot take one).
            server = uvicorn.Server(config)
            if config.workers > 1:
                Multiprocess(config, sockets=[config.bind_socket()]).run()
            else:
                server.run()
                if not server.started:
                    return 1
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from .app import signed_lifetime
    from .keys import KeyRing

    settings = _settings(args.config)
    ring = KeyRing(settings.path(settings.keys.dir), retention=signed_lifetime(settings))
    ring.load()
    if args.keys_command == "generate":
        made = ring.generate_missing()
        for key in made:
            print(f"generated {key}" if isinstance(key, str)
                  else f"generated {key.alg} key {key.kid} ({key.state})")
        if not made:
            print("every algorithm already has an active and a next key, and the secret exists")
    elif args.keys_command == "rotate":
        for line in ring.rotate():
            print(line)
    elif args.keys_command == "rotate-secret":
        print(ring.rotate_secret())
    else:
        for key in ring.keys:
            retired = f" retired_at={key.retired_at}" if key.retired_at else ""
            print(f"{key.kid}  {key.alg}  {key.state}{retired}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="broker", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the broker")
    p.add_argument("--config", required=True, help="the broker.yaml to serve")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1; 0.0.0.0 in a container)")
    p.add_argument("--port", type=int, default=8080, help="HTTP port (default: 8080)")
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes (default: 1; prefer more pods to more workers)")
    p.add_argument("--graceful-timeout", type=int, default=None,
                   help="seconds to finish in-flight requests (default: http.graceful_shutdown_seconds)")
    p.add_argument("--log-level", default="info",
                   help="debug, info, warning or error (default: info)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("check-config", help="validate a config file without serving")
    p.add_argument("--config", required=True, help="the broker.yaml to check (exit 2 on errors)")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("keys", help="signing keys and the shared secret: generate, rotate, "
                                    "rotate-secret, list")
    p.add_argument("keys_command", choices=["generate", "rotate", "rotate-secret", "list"],
                   help="generate missing keys (and the shared secret), promote the next key, "
                        "replace the shared secret, or list them")
    p.add_argument("--config", required=True, help="the broker.yaml whose keys.dir to use")
    p.set_defaults(func=cmd_keys)

    _optional_commands(sub)
    return parser


def _optional_commands(sub: argparse._SubParsersAction) -> None:
    """Commands whose packages register themselves (authz admin, simulator, demo)."""
    try:
        from .authz.cli import add_commands
    except ImportError:
        pass
    else:
        add_commands(sub)
    from .sessions_cli import add_commands as add_sessions

    add_sessions(sub)
    from .demo.command import add_command as add_demo

    add_demo(sub)
    p = sub.add_parser("simulator", help="run a simulator of an upstream service")
    p.add_argument("service", choices=["bankid"])
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=_simulator)


def _simulator(args: argparse.Namespace) -> int:
    from .simulators.bankid import main

    return main(args.rest)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
