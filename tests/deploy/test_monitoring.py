"""The optional PrometheusRule and Grafana dashboard of the chart: off by default, valid when
on, and about metrics the broker really exports."""

from __future__ import annotations

import json
import re

import manifest_check
from deploy_helpers import CHART, KUBE_VERSION, PRODUCTION, kinds, only, render

from broker.metrics import Metrics

ON = ("metrics.prometheusRule.enabled=true", "metrics.grafanaDashboard.enabled=true")


def _exported() -> set[str]:
    """Every sample name the broker's /metrics can show (counters as *_total, histograms
    with their _bucket/_sum/_count series)."""
    metrics = Metrics()
    names = set()
    for family in metrics.registry.collect():
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names |= {family.name + s for s in ("_bucket", "_sum", "_count")}
    return names


def _check(docs: list[dict]) -> list[str]:
    return manifest_check.schema_errors(docs, KUBE_VERSION) + manifest_check.reference_errors(docs)


def _used(text: str) -> set[str]:
    return set(re.findall(r"\bbroker_[a-z_]+", text))


def test_off_by_default() -> None:
    docs = render()
    assert kinds(docs, "PrometheusRule") == []
    assert [c["metadata"]["name"] for c in kinds(docs, "ConfigMap")] == ["broker"]


def test_rules_and_dashboard_render_valid() -> None:
    docs = render(sets=ON)
    rule = only(docs, "PrometheusRule")
    assert _check(docs) == []
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert {"BrokerDown", "BrokerStoreErrors", "BrokerLoginErrorRatio"} <= alerts
    dashboard = only(docs, "ConfigMap", "broker-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    board = json.loads(dashboard["data"]["broker.json"])
    assert board["panels"] and all(p["targets"] for p in board["panels"])


def test_rules_and_dashboard_use_only_exported_metrics() -> None:
    exported = _exported()
    rule_text = json.dumps(only(render(sets=ON), "PrometheusRule")["spec"])
    board_text = (CHART / "dashboards" / "broker.json").read_text(encoding="utf-8")
    for where, text in (("PrometheusRule", rule_text), ("dashboard", board_text)):
        used = _used(text)
        assert used, where
        assert used <= exported, f"{where} uses metrics the broker does not export: {used - exported}"


def test_rules_select_the_scraped_job() -> None:
    """The ServiceMonitor scrapes the Service; Prometheus names the job after it."""
    docs = render(PRODUCTION)
    service = only(docs, "Service")["metadata"]["name"]
    for group in only(docs, "PrometheusRule")["spec"]["groups"]:
        for r in group["rules"]:
            assert f'job="{service}"' in r["expr"], r["alert"]


def test_a_broken_rule_is_caught() -> None:
    docs = render(sets=ON)
    rule = only(docs, "PrometheusRule")
    del rule["spec"]["groups"][0]["rules"][0]["expr"]
    rule["spec"]["groups"][0]["rules"][1]["for"] = "five minutes"
    errors = _check(docs)
    assert any("expr" in e for e in errors) and any("duration" in e for e in errors), errors


def test_bad_dashboard_json_is_caught() -> None:
    docs = render(sets=ON)
    only(docs, "ConfigMap", "broker-dashboard")["data"]["broker.json"] = "{not json"
    assert any("not valid JSON" in e for e in _check(docs))
