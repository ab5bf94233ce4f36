"""Debian's chromium as the browser tests launch it, and axe-core to check what it shows."""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium: sudo apt-get install chromium",
)
# The package is no more than axe-core's axe.min.js, pinned in pyproject.toml's dev extra.
AXE_PACKAGE = "axe_playwright_python"


@functools.cache
def axe_script() -> str | None:
    try:
        return (resources.files(AXE_PACKAGE) / "axe.min.js").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        return None


def axe_or_skip() -> str:
    script = axe_script()
    if script is None:
        pytest.skip(
            "needs axe-core: `make test` installs the dev dependencies "
            "(or: .venv/bin/pip install -e '.[dev]', which brings axe-playwright-python)"
        )
    return script


async def axe_violations(page: Page) -> list[str]:
    """Every rule axe-core finds broken on the page as it is now, one line per element."""
    # Evaluated through the DevTools protocol, which the pages' Content-Security-Policy does not
    # govern: a <script> tag with axe in it would be refused.
    await page.evaluate(axe_or_skip())
    found: list[dict[str, Any]] = await page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return [
        f"{rule['id']} ({rule['impact']}) at {node['target']}: {node['failureSummary']}"
        for rule in found
        for node in rule["nodes"]
    ]
