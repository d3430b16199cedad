"""Helpers for the deployment tests: find helm, render the chart, pick manifests.

(A module of its own rather than conftest.py, so test files can import it by a unique name.)
"""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.tools import tool

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "broker"
CI_VALUES = ROOT / "helm" / "ci"
HELM_CHECK = ROOT / ".ci" / "helm-check"


def _pinned(name: str) -> str:
    """A version pinned in .ci/helm-check, so the script and the tests agree."""
    m = re.search(rf"^{name}=(\S+)$", HELM_CHECK.read_text(encoding="utf-8"), re.M)
    assert m, f"{name} is not pinned in {HELM_CHECK}"
    return m.group(1)


KUBE_VERSION = _pinned("KUBE_VERSION")


@cache
def helm_binary() -> str:
    return tool("helm")


class RenderError(Exception):
    pass


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm_binary(), *args], capture_output=True, text=True, timeout=120, check=False
    )


@cache
def _render(values_files: tuple[str, ...], sets: tuple[str, ...]) -> str:
    args = ["template", "broker", str(CHART), "--namespace", "idp", "--kube-version", KUBE_VERSION]
    for f in values_files:
        args += ["-f", str(CI_VALUES / f)]
    for s in sets:
        args += ["--set", s]
    proc = helm(*args)
    if proc.returncode != 0:
        raise RenderError(proc.stderr)
    return proc.stdout


def render_text(*values_files: str, sets: tuple[str, ...] = ()) -> str:
    return _render(tuple(values_files), tuple(sets))


def render(*values_files: str, sets: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(render_text(*values_files, sets=sets)) if d]


def render_fails(*values_files: str, sets: tuple[str, ...] = ()) -> str:
    """Render expecting helm to refuse; returns its error output."""
    try:
        render_text(*values_files, sets=sets)
    except RenderError as exc:
        return str(exc)
    pytest.fail(f"helm template accepted values {values_files} {sets}")


def only(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def kinds(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return only(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def broker_yaml(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The rendered configuration (the ConfigMap that holds broker.yaml; the Grafana
    dashboard is another ConfigMap)."""
    found = [d for d in kinds(docs, "ConfigMap") if "broker.yaml" in d.get("data", {})]
    assert len(found) == 1, f"expected one ConfigMap with broker.yaml, found {len(found)}"
    return yaml.safe_load(found[0]["data"]["broker.yaml"])


#: The operator's example (docs/operations.md), rendered and validated like the CI files.
PRODUCTION = str(CHART / "values-production.yaml")

VALUES_SETS = {
    "default": (),
    "all-features": ("all-features.yaml",),
    "inline-secrets": ("inline-secrets.yaml",),
    "production": (PRODUCTION,),
}
