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

PENDING = ("metrics: unknown key", "http.graceful_shutdown_seconds: unknown key")


@pytest.mark.parametrize("name", sorted(VALUES_SETS))
def test_rendered_config_parses(name: str) -> None:
    from broker.config import ConfigError, parse_settings

    docs = render(*VALUES_SETS[name])
    env = {
        e["name"]: f"dummy-{e['name'].lower()}-0123456789"
        for e in container(docs)["env"]
        if "valueFrom" in e
    }
    try:
        settings = parse_settings(broker_yaml(docs), f"<{name}>", env)
    except ConfigError as exc:
        problems = [ln.split(": ", 1)[1] for ln in str(exc).splitlines()]
        if problems and all(p in PENDING for p in problems):
            pytest.xfail("settings model lacks: " + "; ".join(problems))
        raise
    assert settings.keys.dir == "/etc/broker/keys"
