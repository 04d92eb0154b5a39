"""Browser helpers for the web UI and sign-on tests: Debian's Chromium through Playwright (one
browser per module), the OpenID provider's login form, console-error capture, axe-core injection."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.services import missing

CHROMIUM = "/usr/bin/chromium"
AXE = Path(__file__).parents[1] / "support" / "ui" / "node_modules" / "axe-core" / "axe.min.js"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-extensions",
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright (pip install -e '.[test]')")
    if not Path(CHROMIUM).exists():
        missing(f"{CHROMIUM} (apt-get install -y chromium)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


def log_in_at_provider(page: Any, login: str) -> None:
    """Fill in the login form of the test OpenID provider (tests/support/oidc_fixture.py) and submit."""
    page.wait_for_selector("input[name=login]")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "any password")
    page.click("button[type=submit]")


@dataclass
class Watched:
    """A page with everything that went wrong on it: console errors, failed or foreign requests."""

    page: Any
    base: str
    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def check_clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.foreign == [], f"requests to other hosts: {self.foreign}"


@pytest.fixture
def watched(chromium: Any, request: pytest.FixtureRequest) -> Iterator[Watched]:
    # bypass_csp: axe-core is injected as an inline script, which the pages' CSP (rightly) forbids.
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    base = request.getfixturevalue("ui_server").url
    w = Watched(page, base)
    page.on("console", lambda m: w.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: w.errors.append(f"page error: {e}"))

    def on_request(r: Any) -> None:
        if not r.url.startswith((base, "data:")):
            w.foreign.append(r.url)

    page.on("request", on_request)
    page.on("response", lambda r: w.errors.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)
    yield w
    context.close()


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not AXE.exists():
        missing(f"{AXE} (npm ci --prefix tests/support/ui)")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => JSON.stringify((await axe.run(document)).violations)")
    return [v for v in json.loads(result) if v.get("impact") in ("serious", "critical")]


def describe(violations: list[dict[str, Any]]) -> str:
    return "\n".join(f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:5]}" for v in violations)
