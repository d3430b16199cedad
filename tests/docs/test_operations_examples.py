"""What docs/operations.md and the docs links promise, checked: the example production
broker.yaml is accepted by the broker, every relative link in the docs resolves, the README
links the guides, and docs/architecture.md lists every package."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from broker.config import load_settings, parse_settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]


def _example(doc: Path, name: str) -> str:
    m = re.search(rf"<!-- example: {re.escape(name)} -->\s*```\w*\n(.*?)```",
                  doc.read_text(encoding="utf-8"), re.S)
    assert m, f"{doc.name} has no example {name!r}"
    return m.group(1)


def test_the_production_broker_yaml_is_accepted(tmp_path):
    text = _example(ROOT / "docs" / "operations.md", "broker.yaml")
    env = {name: f"dummy-{name.lower()}-0123456789" for name in re.findall(r"\$\{(\w+)\}", text)}
    settings = parse_settings(yaml.safe_load(text), "<operations.md>", env)
    assert settings.issuer == "https://login.example.kommun.se"
    assert settings.connectors.bankid.environment == "production"
    assert settings.authorization.source == "sql"
    assert {c.client_id for c in settings.clients} == {"lifecare", "mcss"}
    # What `broker check-config` reads: a file with the secrets still as ${VAR}.
    (tmp_path / "broker.yaml").write_text(text)
    assert load_settings(tmp_path / "broker.yaml", env).store.url.startswith("redis+sentinel://")


def test_a_secret_missing_from_the_environment_names_it():
    from broker.config import ConfigError

    text = _example(ROOT / "docs" / "operations.md", "broker.yaml")
    with pytest.raises(ConfigError, match=r"store\.url: environment variable BROKER_REDIS_PASSWORD"):
        parse_settings(yaml.safe_load(text), "<operations.md>", {})


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_relative_links_resolve(doc):
    text = doc.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" in target:
            continue
        assert (doc.parent / target).exists(), f"{doc.name}: broken link {target}"


def test_readme_links_the_guides_and_not_the_shared_design():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for guide in ("docs/architecture.md", "docs/integration.md", "docs/operations.md",
                  "CHANGELOG.md"):
        assert f"]({guide})" in readme, guide
    assert "DESIGN.md" not in readme


def test_architecture_lists_every_package():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    packages = sorted(p.parent.relative_to(ROOT).as_posix()
                      for p in (ROOT / "broker").rglob("__init__.py"))
    for package in packages:
        assert f"| `{package}/` |" in text, f"docs/architecture.md: no line for {package}/"
    for name in ("Connector", "AuthorizationSource", "Store"):
        assert f"**`{name}`**" in text
    assert "## Tokens and grants" in text
