"""Validate rendered Kubernetes manifests: schemas, CRDs structurally, and cross-references.

Used by .ci/helm-check (``python tests/deploy/manifest_check.py --kube-version V FILE...``) and
imported by the tests in this folder.

- Built-in kinds are validated with kubernetes-validate against the OpenAPI schema of one
  pinned Kubernetes version, strictly (unknown fields are errors).
- Custom resources have no schema in kubernetes-validate. The kinds listed in CRD_CHECKS are
  checked structurally here instead; any other kind without a schema is an error.
- Cross-references a schema cannot see: selectors that match the pods, Ingress backends and
  ServiceMonitor endpoints that name a real Service port, an HPA that targets the Deployment.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

Manifest = dict[str, Any]


def load(text: str) -> list[Manifest]:
    return [d for d in yaml.safe_load_all(text) if d]


def _name(m: Manifest) -> str:
    return f"{m.get('kind')}/{m.get('metadata', {}).get('name')}"


def _check_service_monitor(m: Manifest) -> list[str]:
    errors = []
    if m.get("apiVersion") != "monitoring.coreos.com/v1":
        errors.append("apiVersion must be monitoring.coreos.com/v1")
    spec = m.get("spec") or {}
    if not isinstance(spec.get("selector", {}).get("matchLabels"), dict):
        errors.append("spec.selector.matchLabels is required")
    endpoints = spec.get("endpoints")
    if not isinstance(endpoints, list) or not endpoints:
        errors.append("spec.endpoints must be a non-empty list")
    else:
        allowed = {
            "port",
            "path",
            "interval",
            "scrapeTimeout",
            "scheme",
            "honorLabels",
            "relabelings",
            "metricRelabelings",
            "tlsConfig",
            "targetPort",
        }
        for i, ep in enumerate(endpoints):
            if not isinstance(ep.get("port"), str):
                errors.append(f"spec.endpoints[{i}].port must name a Service port")
            unknown = set(ep) - allowed
            if unknown:
                errors.append(f"spec.endpoints[{i}]: unknown fields {sorted(unknown)}")
    return errors


_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")


def _check_prometheus_rule(m: Manifest) -> list[str]:
    """The PrometheusRule CRD's required shape: groups of named rules, each an alert or a
    recording rule with an expression; labels and annotations are string maps."""
    errors = []
    if m.get("apiVersion") != "monitoring.coreos.com/v1":
        errors.append("apiVersion must be monitoring.coreos.com/v1")
    groups = (m.get("spec") or {}).get("groups")
    if not isinstance(groups, list) or not groups:
        return [*errors, "spec.groups must be a non-empty list"]
    for g, group in enumerate(groups):
        if not isinstance(group.get("name"), str) or not group["name"]:
            errors.append(f"spec.groups[{g}].name is required")
        rules = group.get("rules")
        if not isinstance(rules, list) or not rules:
            errors.append(f"spec.groups[{g}].rules must be a non-empty list")
            continue
        for r, rule in enumerate(rules):
            where = f"spec.groups[{g}].rules[{r}]"
            unknown = set(rule) - {"alert", "record", "expr", "for", "labels", "annotations",
                                   "keep_firing_for"}
            if unknown:
                errors.append(f"{where}: unknown fields {sorted(unknown)}")
            if ("alert" in rule) == ("record" in rule):
                errors.append(f"{where}: needs exactly one of alert and record")
            if not isinstance(rule.get("expr"), str) or not rule["expr"].strip():
                errors.append(f"{where}.expr must be a non-empty string")
            if "for" in rule and not _DURATION.match(str(rule["for"])):
                errors.append(f"{where}.for is not a duration: {rule['for']!r}")
            for field in ("labels", "annotations"):
                value = rule.get(field, {})
                if not isinstance(value, dict) or not all(
                        isinstance(v, str) for v in value.values()):
                    errors.append(f"{where}.{field} must map names to strings")
    return errors


# Custom resources validated structurally, by (apiVersion group, kind).
CRD_CHECKS: dict[tuple[str, str], Callable[[Manifest], list[str]]] = {
    ("monitoring.coreos.com", "ServiceMonitor"): _check_service_monitor,
    ("monitoring.coreos.com", "PrometheusRule"): _check_prometheus_rule,
}


def schema_errors(docs: Iterable[Manifest], kube_version: str) -> list[str]:
    import kubernetes_validate

    errors = []
    for m in docs:
        group = str(m.get("apiVersion", "")).rpartition("/")[0]
        crd_check = CRD_CHECKS.get((group, m.get("kind", "")))
        if crd_check is not None:
            errors += [f"{_name(m)}: {e}" for e in crd_check(m)]
            continue
        try:
            kubernetes_validate.validate(m, kube_version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(
                f"{_name(m)}: no schema for {m.get('apiVersion')} in Kubernetes "
                f"{kube_version} and no structural check in CRD_CHECKS"
            )
        except kubernetes_validate.ValidationError as exc:
            path = "/".join(str(p) for p in exc.path)
            errors.append(f"{_name(m)}: {path}: {exc.message}")
    return errors


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def reference_errors(docs: list[Manifest]) -> list[str]:
    errors = []
    by_kind: dict[str, list[Manifest]] = {}
    for m in docs:
        by_kind.setdefault(m["kind"], []).append(m)
    deployments = by_kind.get("Deployment", [])
    pod_labels = [d["spec"]["template"]["metadata"].get("labels", {}) for d in deployments]
    services = {s["metadata"]["name"]: s for s in by_kind.get("Service", [])}

    def selects_pods(m: Manifest, selector: dict[str, str] | None) -> None:
        if not selector or not any(_matches(selector, lbl) for lbl in pod_labels):
            errors.append(f"{_name(m)}: selector {selector} matches no pod template")

    for d in deployments:
        sel = d["spec"]["selector"]["matchLabels"]
        if not _matches(sel, d["spec"]["template"]["metadata"].get("labels", {})):
            errors.append(f"{_name(d)}: selector does not match its own pod template")
    for s in services.values():
        selects_pods(s, s["spec"].get("selector"))
    for p in by_kind.get("PodDisruptionBudget", []):
        selects_pods(p, p["spec"]["selector"].get("matchLabels"))
    for n in by_kind.get("NetworkPolicy", []):
        selects_pods(n, n["spec"]["podSelector"].get("matchLabels"))
    for ing in by_kind.get("Ingress", []):
        for rule in ing["spec"].get("rules", []):
            for path in rule.get("http", {}).get("paths", []):
                svc = path["backend"]["service"]
                target = services.get(svc["name"])
                names = {p.get("name") for p in (target or {}).get("spec", {}).get("ports", [])}
                if target is None or svc["port"].get("name") not in names:
                    errors.append(f"{_name(ing)}: backend {svc} is not a rendered Service port")
    for sm in by_kind.get("ServiceMonitor", []):
        sel = sm["spec"]["selector"]["matchLabels"]
        matched = [s for s in services.values() if _matches(sel, s["metadata"].get("labels", {}))]
        if not matched:
            errors.append(f"{_name(sm)}: selects no Service by its labels")
        ports = {p.get("name") for s in matched for p in s["spec"]["ports"]}
        for ep in sm["spec"]["endpoints"]:
            if ep.get("port") not in ports:
                errors.append(f"{_name(sm)}: endpoint port {ep.get('port')!r} not on the Service")
    for cm in by_kind.get("ConfigMap", []):
        for key, value in (cm.get("data") or {}).items():
            if key.endswith(".json"):
                try:
                    json.loads(value)
                except ValueError as exc:
                    errors.append(f"{_name(cm)}: {key} is not valid JSON ({exc})")
    names = {d["metadata"]["name"] for d in deployments}
    for hpa in by_kind.get("HorizontalPodAutoscaler", []):
        ref = hpa["spec"]["scaleTargetRef"]
        if ref.get("kind") != "Deployment" or ref.get("name") not in names:
            errors.append(f"{_name(hpa)}: scaleTargetRef {ref} is not the rendered Deployment")
    return errors


def check(text: str, kube_version: str) -> list[str]:
    docs = load(text)
    if not docs:
        return ["no manifests rendered"]
    return schema_errors(docs, kube_version) + reference_errors(docs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kube-version", required=True, help="e.g. 1.33.0")
    ap.add_argument("files", nargs="+", type=Path)
    args = ap.parse_args(argv)
    failed = False
    for f in args.files:
        text = f.read_text(encoding="utf-8")
        docs = load(text)
        kinds = sorted({m["kind"] for m in docs})
        errors = check(text, args.kube_version)
        crds = sorted(
            {
                m["kind"]
                for m in docs
                if (str(m["apiVersion"]).rpartition("/")[0], m["kind"]) in CRD_CHECKS
            }
        )
        print(f"  {f}: {len(docs)} manifests ({', '.join(kinds)})")
        if crds:
            print(
                f"    no OpenAPI schema for custom resources {', '.join(crds)}: "
                "checked structurally instead"
            )
        for e in errors:
            print(f"    ERROR {e}")
        failed = failed or bool(errors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
