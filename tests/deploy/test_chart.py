"""The Helm chart renders what an operator relies on.

Renders helm/broker with the default values and with each file in helm/ci/, then asserts on
the manifests. Needs helm: without it these tests fail (never skip) and say to run
`bash .ci/setup`, which installs it.
"""

from __future__ import annotations

import re

import pytest
import yaml
from deploy_helpers import (
    CHART,
    CI_VALUES,
    KUBE_VERSION,
    PRODUCTION,
    VALUES_SETS,
    broker_yaml,
    container,
    helm,
    kinds,
    only,
    render,
    render_fails,
    render_text,
)

DEFAULT: tuple[str, ...] = ()
ALL = ("all-features.yaml",)
INLINE = ("inline-secrets.yaml",)
SITHS_ANNOTATIONS = (
    "nginx.ingress.kubernetes.io/auth-tls-secret",
    "nginx.ingress.kubernetes.io/auth-tls-verify-client",
    "nginx.ingress.kubernetes.io/auth-tls-verify-depth",
    "nginx.ingress.kubernetes.io/auth-tls-pass-certificate-to-upstream",
)
SITHS_ON = (
    "siths.enabled=true",
    "siths.host=siths.login.example.kommun.se",
    "siths.clientCASecret=siths-ca",
    "trustedProxies[0]=10.1.0.0/16",
    "siths.trustStore.existingConfigMap=siths-trust",
)


@pytest.fixture(params=sorted(VALUES_SETS), ids=sorted(VALUES_SETS))
def values_set(request: pytest.FixtureRequest) -> tuple[str, ...]:
    return VALUES_SETS[request.param]


def pod_spec(docs):
    return only(docs, "Deployment")["spec"]["template"]["spec"]


def env_vars(docs) -> dict[str, dict]:
    return {e["name"]: e for e in container(docs).get("env", [])}


# --- every values set --------------------------------------------------------------------


def test_every_ci_values_file_is_exercised() -> None:
    files = {p.name for p in CI_VALUES.glob("*.yaml")}
    assert files == {f for fs in VALUES_SETS.values() for f in fs if "/" not in f}
    assert any(PRODUCTION in fs for fs in VALUES_SETS.values())


def test_helm_lint_strict(values_set) -> None:
    args = ["lint", "--strict", "--kube-version", KUBE_VERSION, str(CHART)]
    for f in values_set:
        args += ["-f", str(CI_VALUES / f)]
    proc = helm(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_manifests_are_valid_kubernetes(values_set) -> None:
    import manifest_check

    errors = manifest_check.check(render_text(*values_set), KUBE_VERSION)
    assert errors == [], "\n".join(errors)


def test_hardened_pod(values_set) -> None:
    docs = render(*values_set)
    spec = pod_spec(docs)
    assert spec["automountServiceAccountToken"] is False
    pod_sc = spec["securityContext"]
    assert pod_sc["runAsNonRoot"] is True and pod_sc["runAsUser"] != 0
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container(docs)["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert sc["runAsNonRoot"] is True
    # With a read-only root, /tmp must be a volume.
    mounts = {m["mountPath"]: m["name"] for m in container(docs)["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    sa = only(docs, "ServiceAccount")
    assert sa["automountServiceAccountToken"] is False
    assert spec["serviceAccountName"] == sa["metadata"]["name"]


def test_probes(values_set) -> None:
    c = container(render(*values_set))
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": 8080, "metrics": 9100}


def test_every_env_reference_in_broker_yaml_is_injected(values_set) -> None:
    docs = render(*values_set)
    text = only(docs, "ConfigMap", "broker")["data"]["broker.yaml"]
    referenced = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
    assert referenced <= set(env_vars(docs)), referenced - set(env_vars(docs))


def test_no_secret_material_in_the_configmap(values_set) -> None:
    text = only(render(*values_set), "ConfigMap", "broker")["data"]["broker.yaml"]
    assert "dummy" not in text  # the inline-secrets values all contain "dummy"


def test_config_paths_match_mounts(values_set) -> None:
    docs = render(*values_set)
    cfg = broker_yaml(docs)
    c = container(docs)
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert c["args"][:3] == ["serve", "--config", "/etc/broker/broker.yaml"]
    assert "/etc/broker/broker.yaml" in mounts
    assert cfg["keys"]["dir"] == "/etc/broker/keys" and "/etc/broker/keys" in mounts
    p12 = cfg.get("connectors", {}).get("bankid", {}).get("certificate", {}).get("p12")
    if p12:
        assert p12.rsplit("/", 1)[0] in mounts
    ca_bundle = cfg.get("connectors", {}).get("siths", {}).get("trust", {}).get("ca_bundle")
    if ca_bundle:
        assert ca_bundle.rsplit("/", 1)[0] in mounts
    if "path" in cfg["authorization"]:
        assert cfg["authorization"]["path"].rsplit("/", 1)[0] in mounts


# --- defaults ------------------------------------------------------------------------------


def test_default_is_highly_available() -> None:
    docs = render()
    deploy = only(docs, "Deployment")
    assert deploy["spec"]["replicas"] >= 2
    assert deploy["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    terms = pod_spec(docs)["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    term = terms[0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == deploy["spec"]["selector"]["matchLabels"]
    assert only(docs, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    assert not kinds(docs, "HorizontalPodAutoscaler")


def test_default_has_only_the_main_ingress_without_client_certificates() -> None:
    docs = render()
    ingress = only(docs, "Ingress")
    assert ingress["spec"]["rules"][0]["host"] == "login.example.kommun.se"
    assert ingress["spec"]["tls"][0]["hosts"] == ["login.example.kommun.se"]
    assert not any("auth-tls" in a for a in (ingress["metadata"].get("annotations") or {}))
    assert "siths" not in broker_yaml(docs)["connectors"]


def test_default_bankid_is_production() -> None:
    """BankID's test environment gives anyone a test BankID for any personal number: a chart
    installed without choosing must not trust it (nor the simulator)."""
    assert broker_yaml(render())["connectors"]["bankid"]["environment"] == "production"
    assert broker_yaml(render(sets=("bankid.environment=test",)))["connectors"]["bankid"][
        "environment"] == "test"


def test_service_exposes_http_and_metrics() -> None:
    ports = {p["name"]: p for p in only(render(), "Service")["spec"]["ports"]}
    assert ports["http"]["targetPort"] == "http"
    assert ports["metrics"]["port"] == 9100 and ports["metrics"]["targetPort"] == "metrics"
    assert broker_yaml(render())["metrics"]["port"] == 9100


def test_optional_features_are_off_by_default() -> None:
    present = {d["kind"] for d in render()}
    assert not present & {"HorizontalPodAutoscaler", "NetworkPolicy", "ServiceMonitor"}


def test_grace_period_follows_graceful_shutdown() -> None:
    for sets in ((), ("gracefulShutdownSeconds=40", "preStopSleepSeconds=10")):
        docs = render(sets=sets)
        cfg = broker_yaml(docs)
        spec = pod_spec(docs)
        sleep = int(container(docs)["lifecycle"]["preStop"]["exec"]["command"][1])
        grace = cfg["http"]["graceful_shutdown_seconds"]
        assert spec["terminationGracePeriodSeconds"] == sleep + grace + 5


def test_config_change_rolls_the_pods() -> None:
    def checksum(sets: tuple[str, ...]) -> str:
        meta = only(render(sets=sets), "Deployment")["spec"]["template"]["metadata"]
        return meta["annotations"]["checksum/config"]

    assert checksum(()) == checksum(())
    assert checksum(()) != checksum(("config.session.idle_timeout=1800",))


# --- Redis -------------------------------------------------------------------------------


def test_standalone_redis_url() -> None:
    assert broker_yaml(render())["store"]["url"] == "redis://redis-master:6379/0"
    cfg = broker_yaml(
        render(
            sets=(
                "redis.tls=true",
                "redis.host=r.example",
                "redis.port=6380",
                "redis.db=3",
                "redis.auth.enabled=true",
                "redis.auth.existingSecret=redis",
            )
        )
    )
    assert cfg["store"]["url"] == "rediss://:${BROKER_REDIS_PASSWORD}@r.example:6380/3"


def test_sentinel_url_and_password_from_existing_secret() -> None:
    docs = render(*ALL)
    assert broker_yaml(docs)["store"]["url"] == (
        "redis+sentinel://:${BROKER_REDIS_PASSWORD}@"
        "redis-node-0.redis-headless.redis.svc:26379,"
        "redis-node-1.redis-headless.redis.svc:26379,"
        "redis-node-2.redis-headless.redis.svc:26379"
        "/broker/2?sentinel_password=${BROKER_REDIS_SENTINEL_PASSWORD}&ssl=true"
    )
    env = env_vars(docs)
    assert env["BROKER_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "broker-redis",
        "key": "redis-password",
    }
    assert env["BROKER_REDIS_SENTINEL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "broker-redis",
        "key": "sentinel-password",
    }


def test_redis_auth_without_a_password_source_fails() -> None:
    assert "redis.auth" in render_fails(sets=("redis.auth.enabled=true",))


# --- secrets -----------------------------------------------------------------------------


def test_existing_secrets_are_honoured() -> None:
    docs = render(*ALL)
    assert kinds(docs, "Secret") == [], "existingSecret everywhere: the chart renders no Secret"
    volumes = {v["name"]: v for v in pod_spec(docs)["volumes"]}
    assert volumes["keys"]["secret"]["secretName"] == "broker-signing-keys"
    assert volumes["bankid"]["secret"]["secretName"] == "broker-bankid-rp"
    assert volumes["authz"]["secret"]["secretName"] == "broker-authz"
    env = env_vars(docs)
    assert env["BROKER_BANKID_CERT_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == (
        "broker-bankid-rp"
    )
    assert env["BROKER_CLIENT_SECRET_MCSS"]["valueFrom"]["secretKeyRef"] == {
        "name": "broker-client-secrets",
        "key": "mcss",
    }
    assert env["BROKER_PAIRWISE_SALT"]["valueFrom"]["secretKeyRef"] == {
        "name": "broker-pairwise",
        "key": "salt",
    }


def test_inline_secrets_are_rendered_into_chart_secrets() -> None:
    docs = render(*INLINE)
    secrets = {s["metadata"]["name"]: s for s in kinds(docs, "Secret")}
    assert set(secrets) == {
        f"broker-{n}" for n in ("keys", "bankid", "clients", "redis", "pairwise", "authz")
    }
    assert "rs256-2025.json" in secrets["broker-keys"]["stringData"]
    env = env_vars(docs)
    assert env["BROKER_CLIENT_SECRET_MCSS_TEST"]["valueFrom"]["secretKeyRef"] == {
        "name": "broker-clients",
        "key": "mcss-test",
    }
    client = broker_yaml(docs)["clients"][0]
    assert client["client_secret"] == "${BROKER_CLIENT_SECRET_MCSS_TEST}"


def test_keys_are_mounted_as_a_directory_for_live_rotation() -> None:
    docs = render(*ALL)
    mount = next(m for m in container(docs)["volumeMounts"] if m["name"] == "keys")
    assert mount == {"name": "keys", "mountPath": "/etc/broker/keys", "readOnly": True}


def test_client_with_a_secret_needs_one() -> None:
    err = render_fails(
        sets=(
            "clients[0].client_id=rp",
            "clients[0].client_name=RP",
            "clients[0].redirect_uris[0]=https://rp.example/cb",
        )
    )
    assert "clientSecrets" in err


def test_private_key_jwt_clients_get_no_secret() -> None:
    docs = render(*ALL)
    lifecare = next(c for c in broker_yaml(docs)["clients"] if c["client_id"] == "lifecare")
    assert "client_secret" not in lifecare
    assert "BROKER_CLIENT_SECRET_LIFECARE" not in env_vars(docs)


def test_no_secret_defaults_in_values() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    assert values["redis"]["auth"]["password"] == ""
    assert values["bankid"]["certificate"] == "" and values["bankid"]["password"] == ""
    assert values["clientSecrets"]["values"] == {} and values["keys"]["files"] == {}
    assert values["pairwiseSalt"]["value"] == "" and values["authorization"]["content"] == ""


# --- SITHS -------------------------------------------------------------------------------


def test_siths_ingress_with_client_certificate_annotations() -> None:
    docs = render(*ALL)
    ingresses = {i["metadata"]["name"]: i for i in kinds(docs, "Ingress")}
    siths, main = ingresses["broker-siths"], ingresses["broker"]
    ann = siths["metadata"]["annotations"]
    assert ann["nginx.ingress.kubernetes.io/auth-tls-secret"] == "ingress-nginx/siths-ca"
    assert ann["nginx.ingress.kubernetes.io/auth-tls-verify-client"] == "optional_no_ca"
    assert ann["nginx.ingress.kubernetes.io/auth-tls-verify-depth"] == "3"
    assert ann["nginx.ingress.kubernetes.io/auth-tls-pass-certificate-to-upstream"] == "true"
    # The broker's own page for a certificate nginx refused: on the main host, where it exists.
    assert (ann["nginx.ingress.kubernetes.io/auth-tls-error-page"]
            == "https://login.ci.example.kommun.se/login/siths/error")
    assert siths["spec"]["rules"][0]["host"] == "siths.login.ci.example.kommun.se"
    assert siths["spec"]["tls"][0]["secretName"] == "siths-tls"
    # The main host never asks for a client certificate.
    assert not any(a in (main["metadata"].get("annotations") or {}) for a in SITHS_ANNOTATIONS)
    siths_cfg = broker_yaml(docs)["connectors"]["siths"]
    assert siths_cfg["mode"] == "proxy"
    assert siths_cfg["proxy"] == {
        "format": "nginx",
        "header": "ssl-client-cert",
        "trusted_proxies": ["10.244.0.0/16"],
    }
    assert siths_cfg["login_url"].startswith("https://siths.login.ci.example.kommun.se/")
    assert broker_yaml(docs)["http"]["trusted_proxies"] == ["10.244.0.0/16"]
    # The pinned trust store is mounted where ca_bundle points.
    mounts = {m["mountPath"]: m["name"] for m in container(docs)["volumeMounts"]}
    assert siths_cfg["trust"]["ca_bundle"] == "/etc/broker/siths/siths-ca.pem"
    volume = next(v for v in pod_spec(docs)["volumes"] if v["name"] == mounts["/etc/broker/siths"])
    assert volume["configMap"]["name"] == "siths-trust-store"


def test_siths_defaults_leave_validation_to_the_broker() -> None:
    """optional_no_ca: nginx asks for the card and passes whatever came, so a bad card gets
    the broker's page (what to do next), not nginx's bare 400."""
    docs = render(sets=SITHS_ON)
    siths = only(docs, "Ingress", "broker-siths")
    ann = siths["metadata"]["annotations"]
    assert ann["nginx.ingress.kubernetes.io/auth-tls-verify-client"] == "optional_no_ca"
    assert int(ann["nginx.ingress.kubernetes.io/auth-tls-verify-depth"]) >= 2
    assert ann["nginx.ingress.kubernetes.io/auth-tls-secret"] == "idp/siths-ca"
    # Defaults to the broker's page on the issuer's host (the SITHS host does not route it).
    assert (ann["nginx.ingress.kubernetes.io/auth-tls-error-page"]
            == "https://login.example.kommun.se/login/siths/error")
    login_url = broker_yaml(docs)["connectors"]["siths"]["login_url"]
    assert login_url == "https://siths.login.example.kommun.se/login/siths/"


def test_siths_host_routes_only_the_certificate_step_and_assets() -> None:
    for docs in (render(sets=SITHS_ON), render(*ALL)):
        rules = only(docs, "Ingress", "broker-siths")["spec"]["rules"]
        paths = {p["path"]: p["pathType"] for r in rules for p in r["http"]["paths"]}
        assert paths == {"/login/siths/": "Prefix", "/static/": "Prefix"}


def test_siths_verify_on_is_still_possible() -> None:
    docs = render(sets=(*SITHS_ON, "siths.verifyClient=on"))
    ann = only(docs, "Ingress", "broker-siths")["metadata"]["annotations"]
    assert ann["nginx.ingress.kubernetes.io/auth-tls-verify-client"] == "on"


def test_siths_refuses_an_unsafe_or_incomplete_setup() -> None:
    without = lambda key: tuple(s for s in SITHS_ON if not s.startswith(key))  # noqa: E731
    assert "clientCASecret" in render_fails(sets=without("siths.clientCASecret"))
    assert "trustedProxies" in render_fails(sets=without("trustedProxies"))
    assert "trustStore" in render_fails(sets=without("siths.trustStore"))
    assert "differ" in render_fails(sets=(*SITHS_ON, "siths.host=login.example.kommun.se"))
    assert "verifyClient" in render_fails(sets=(*SITHS_ON, "siths.verifyClient=off"))
    assert "verifyDepth" in render_fails(sets=(*SITHS_ON, "siths.verifyDepth=1"))
    # A relative error page would be looked up on the SITHS host, which does not route it.
    assert "errorPage" in render_fails(sets=(*SITHS_ON, "siths.errorPage=/siths/error"))
    assert "siths.paths" in render_fails(sets=(*SITHS_ON, "siths.paths={/static/}"))
    assert "loginPath" in render_fails(sets=(*SITHS_ON, "siths.loginPath=/siths/"))


def test_network_policy_opens_port_80_for_revocation_checks_with_siths() -> None:
    egress = only(render(*ALL), "NetworkPolicy")["spec"]["egress"]
    ports = {p["port"] for rule in egress for p in rule.get("ports", [])}
    assert {53, 6379, 26379, 443, 80} <= ports


# --- optional features -------------------------------------------------------------------


def test_all_features_render() -> None:
    docs = render(*ALL)
    present = {d["kind"] for d in docs}
    assert {
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "ServiceMonitor",
        "PodDisruptionBudget",
    } <= present
    assert len(kinds(docs, "Ingress")) == 2


def test_hpa_owns_the_replica_count() -> None:
    docs = render(*ALL)
    assert "replicas" not in only(docs, "Deployment")["spec"]
    hpa = only(docs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["minReplicas"] >= 2
    assert "autoscaling" in render_fails(
        sets=("autoscaling.enabled=true", "autoscaling.minReplicas=1")
    )


def test_network_policy_admits_only_ingress_controller_and_monitoring() -> None:
    policy = only(render(*ALL), "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    rules = policy["spec"]["ingress"]
    by_port = {r["ports"][0]["port"]: r["from"][0]["namespaceSelector"] for r in rules}
    assert by_port["http"]["matchLabels"] == {"kubernetes.io/metadata.name": "ingress-nginx"}
    assert by_port["metrics"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"}


def test_service_monitor_scrapes_the_metrics_port() -> None:
    sm = only(render(*ALL), "ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert sm["spec"]["endpoints"][0]["port"] == "metrics"
    assert sm["spec"]["endpoints"][0]["path"] == "/metrics"


# --- the schema catches mistakes ---------------------------------------------------------


@pytest.mark.parametrize(
    ("typo", "key"),
    [
        ("replicaCont=3", "replicaCont"),
        ("redis.sentinal.hosts[0]=x:26379", "sentinal"),
        ("siths.verifyClinet=on", "verifyClinet"),
        ("ingress.tls.secretname=x", "secretname"),
        ("networkPolicy.enable=true", "enable"),
    ],
)
def test_schema_rejects_misspelt_keys(typo: str, key: str) -> None:
    err = render_fails(sets=(typo,))
    assert "additional properties" in err and f"'{key}'" in err, err


@pytest.mark.parametrize(
    "bad",
    [
        "issuer=http://login.example.kommun.se",
        "redis.mode=cluster",
        "bankid.environment=prod",
        "replicaCount=0",
        "image.digest=latest",
    ],
)
def test_schema_rejects_bad_values(bad: str) -> None:
    render_fails(sets=(bad,))


def test_schema_rejects_a_literal_client_secret() -> None:
    render_fails(*INLINE, sets=("clients[0].client_secret=plaintext-secret-in-values",))
    # A ${VAR} reference of the operator's own is fine.
    docs = render(*INLINE, sets=("clients[0].client_secret=${MY_SECRET}",))
    assert broker_yaml(docs)["clients"][0]["client_secret"] == "${MY_SECRET}"
