"""The broker.yaml the chart renders is one the broker accepts.

Each rendering is expanded with the environment the Deployment would give it (a dummy value
per injected variable) and parsed by broker.config.parse_settings, exactly as at start-up.

Two settings the chart renders are part of the deployment contract but may not be in the
settings model yet: `metrics.port` (the /metrics listener) and
`http.graceful_shutdown_seconds` (must fit in terminationGracePeriodSeconds). While the model
rejects only those as unknown keys, the test is an expected failure naming them; any other
error fails it. Once the model has them, it simply passes.
"""

from __future__ import annotations

import pytest
from deploy_helpers import VALUES_SETS, broker_yaml, container, render


@pytest.mark.parametrize("name", sorted(VALUES_SETS))
def test_rendered_config_parses(name: str) -> None:
    from broker.config import parse_settings

    docs = render(*VALUES_SETS[name])
    env = {
        e["name"]: f"dummy-{e['name'].lower()}-0123456789"
        for e in container(docs)["env"]
        if "valueFrom" in e
    }
    settings = parse_settings(broker_yaml(docs), f"<{name}>", env)
    assert settings.keys.dir == "/etc/broker/keys"


SITHS_PROXY = (
    "siths.enabled=true",
    "siths.host=siths.login.example.kommun.se",
    "siths.clientCASecret=siths-ca",
    "trustedProxies[0]=10.1.0.0/16",
    "siths.trustStore.existingConfigMap=siths-trust",
)


@pytest.mark.parametrize(("name", "files", "sets"), [
    ("siths-proxy", (), SITHS_PROXY),
    ("all-features", ("all-features.yaml",), ()),
])
def test_rendered_siths_proxy_config_is_what_the_connector_needs(name, files, sets) -> None:
    """SITHS proxy mode as rendered: accepted by broker.config and by the connector's own
    start-up checks (login_url on another host at /login/siths/, the header trusted only
    from the ingress controller's pods)."""
    from urllib.parse import urlsplit

    from broker.config import parse_settings

    docs = render(*files, sets=sets)
    env = {e["name"]: "dummy-0123456789" for e in container(docs)["env"] if "valueFrom" in e}
    settings = parse_settings(broker_yaml(docs), f"<{name}>", env)
    siths = settings.connectors.siths
    assert siths is not None and siths.mode == "proxy"
    login = urlsplit(siths.login_url)
    assert login.scheme == "https" and login.path == "/login/siths/"
    assert login.hostname != urlsplit(settings.issuer).hostname
    assert siths.proxy is not None and siths.proxy.header == "ssl-client-cert"
    assert siths.proxy.trusted_proxies  # the certificate header is trusted from nobody else
    assert siths.proxy.trusted_proxies == list(settings.http.trusted_proxies)
    assert siths.trust.ca_bundle.startswith("/etc/broker/siths/")


def _secret_env(name: str, secret: str, key: str) -> tuple[str, ...]:
    return (f"extraEnv[0].name={name}", f"extraEnv[0].valueFrom.secretKeyRef.name={secret}",
            f"extraEnv[0].valueFrom.secretKeyRef.key={key}")


AUTHZ_SOURCES = {
    "file": ("authorization.existingSecret=broker-authz",),
    "sql": ("authorization.source=sql",
            "authorization.settings.url=postgresql+asyncpg://broker:${BROKER_AUTHZ_DB_PASSWORD}"
            "@authz-db:5432/broker",
            *_secret_env("BROKER_AUTHZ_DB_PASSWORD", "broker-authz-db", "password")),
    "http": ("authorization.source=http",
             "authorization.settings.url=https://hr.example.kommun.se/broker/lookup",
             "authorization.settings.bearer_token=${BROKER_AUTHZ_TOKEN}",
             "authorization.settings.fail_closed=true",
             *_secret_env("BROKER_AUTHZ_TOKEN", "broker-authz-http", "token")),
}


@pytest.mark.parametrize("kind", sorted(AUTHZ_SOURCES))
def test_every_authorization_source_under_helm(kind: str) -> None:
    """docs/operations.md's recipes for the three sources render a configuration the broker
    accepts, with the secret reaching it only as an environment variable."""
    from broker.config import parse_settings

    docs = render(sets=AUTHZ_SOURCES[kind])
    env = {e["name"]: "dummy-0123456789" for e in container(docs)["env"] if "valueFrom" in e}
    config = broker_yaml(docs)
    settings = parse_settings(config, f"<{kind}>", env)
    assert settings.authorization.source == kind
    if kind == "file":
        assert settings.authorization.path == "/etc/broker/authz/authz.yaml"
    else:
        assert "dummy-0123456789" not in str(config)  # the ConfigMap holds only ${VAR}
