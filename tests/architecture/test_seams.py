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


async def test_a_connector_reaches_only_its_own_records():
    """A connector's `records` put every key under `<name>:`: the login transaction, a
    session or a grant in the same store is out of its reach."""
    from broker.store import MemoryStore
    from broker.store.scoped import ScopedStore

    store = MemoryStore()
    await store.put("txn:abc", {"client_id": "lifecare"}, 60)
    records = ScopedStore(store, "bankid")
    assert await records.get("txn:abc") is None
    assert await records.take("txn:abc") is None
    await records.delete("txn:abc")
    await records.put("txn:abc", {"forged": True}, 60)
    assert await store.get("txn:abc") == {"client_id": "lifecare"}
    assert await store.get("bankid:txn:abc") == {"forged": True}


def test_one_csrf_mechanism_binds_each_token_to_its_form():
    """A token is valid only for what it was made for, and only as the exact string."""
    from broker.security import CsrfTokens

    csrf = CsrfTokens(b"k" * 32)
    token = csrf.token("login|t1")
    assert csrf.valid("login|t1", token)
    assert not csrf.valid("login|t2", token)  # another login's form
    assert not CsrfTokens(b"j" * 32).valid("login|t1", token)  # another key
    for forged in (None, "", token[:-1], token + "0", ["x"], "é" * 40):
        assert not csrf.valid("login|t1", forged)
