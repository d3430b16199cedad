"""axe-core over a Playwright page: the script comes from the `axe-playwright-python`
package (PyPI ships axe.min.js inside it; no browser or npm download). Evaluated through
the DevTools protocol, so the page's CSP (script-src 'self') does not get in the way."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any


@cache
def axe_script() -> str:
    import axe_playwright_python

    return (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text("utf-8")


async def axe_violations(page: Any) -> list[dict[str, Any]]:
    """The WCAG 2.x A/AA violations on the current page (each with its nodes' targets)."""
    await page.evaluate(axe_script())
    result = await page.evaluate(
        "axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}, "
        "resultTypes: ['violations']})")
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "targets": [n["target"] for n in v["nodes"]]} for v in result["violations"]]


async def assert_accessible(page: Any) -> None:
    violations = await axe_violations(page)
    assert not violations, f"{page.url}: {violations}"
