"""Direct mode: the same app on a second, TLS-terminating port for the SITHS host.

For `broker demo` and small installations without a proxy. The main listener stays as it
is (plain HTTP behind the usual TLS edge, or whatever `broker serve` runs); a second uvicorn
server in the *same process and event loop* serves the *same app object* on
`connectors.siths.direct` with TLS and `CERT_OPTIONAL`, so the in-memory store of the demo
is shared and the connector sees the certificate through the ASGI TLS extension
(`direct.py`). One process only: with `--workers > 1` use proxy mode.

Proxy mode is preferred in production: nginx sends the accepted CA names so the browser
offers only SITHS certificates, hands even a certificate it cannot verify to the broker (our
page, not a TLS error; Python's ssl aborts the handshake), and needs no uvicorn internals
(`direct.py` subclasses uvicorn's protocols and pins its version).

    main = uvicorn.Server(uvicorn.Config(app, host=..., port=..., proxy_headers=False))
    siths = uvicorn.Server(siths_server_config(app, settings))
    asyncio.run(serve_with_siths_host(main, siths))   # main.should_exit = True stops both
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn

from ...config import ConfigError, Settings


def siths_server_config(app: Any, settings: Settings, **uvicorn_kwargs: Any) -> uvicorn.Config:
    """uvicorn Config of the SITHS host listener (`connectors.siths.direct`).

    The lifespan stays with the main listener (it opens and closes the store once);
    `proxy_headers` is off because the TCP peer here is the browser itself.
    """
    from .direct import direct_server_config  # refuses to import with an untested uvicorn

    siths = settings.connectors.siths
    if siths is None or siths.mode != "direct" or siths.direct is None:
        raise ConfigError(f"{settings.source}: connectors.siths.mode: the SITHS host listener "
                          "runs only in direct mode (with a direct section)")
    options: dict[str, Any] = {"lifespan": "off", "proxy_headers": False,
                               "server_header": False, "log_level": "info"}
    options.update(uvicorn_kwargs)
    return direct_server_config(app, siths.direct, ca_bundle=siths.trust.ca_bundle,
                                base_dir=settings.base_dir, **options)


async def serve_with_siths_host(main: uvicorn.Server, siths: uvicorn.Server,
                                *others: uvicorn.Server) -> None:
    """Run the main listener, the SITHS host listener (and e.g. the demo's OCSP/CRL server
    in `others`) until any of them stops.

    Servers, not configs, so the caller can stop them (`should_exit`). Ctrl-C (caught by
    whichever server installed its handlers last) stops all: they are tied through that
    public flag.
    """
    servers = [main, siths, *others]

    async def tie() -> None:
        # should_exit is a plain flag (uvicorn polls it too): nothing to await on.
        while not any(s.should_exit for s in servers):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        for s in servers:
            s.should_exit = True

    await asyncio.gather(*(s.serve() for s in servers), tie())
