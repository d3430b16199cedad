"""The direction of the seams (issue 17): the contracts in pyproject.toml's
[tool.importlinter], and the same rule at run time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_import_contracts_hold():
    """lint-imports: connectors and authorization sources never import broker.oidc or the
    provider's Broker; only the composition imports broker.simulators."""
    lint = Path(sys.executable).with_name("lint-imports")
    run = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, env=_env(), capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "Contracts: 4 kept, 0 broken." in run.stdout


def test_every_connector_and_source_module_imports_nothing_of_the_provider():
    """Import every module under broker.connectors and broker.authz in a fresh interpreter:
    no broker.oidc, broker.context, broker.app or broker.simulators module is loaded."""
    code = (
        "import importlib, pkgutil, sys\n"
        "import broker.connectors, broker.authz\n"
        "for pkg in (broker.connectors, broker.authz):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(m.name)\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('broker.oidc', 'broker.context',\n"
        "    'broker.app', 'broker.simulators')))\n"
        "print(' '.join(bad))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == ""
