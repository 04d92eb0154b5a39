"""The web UI shows a signed-in user only what the API would: with `--default-permission
NO_PERMISSIONS`, Bob does not see Alice's experiment in the list, and its page is refused.
Chromium + oidc-provider + `trackgate server --auth oidc`, all on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server_process import RunningServer, trackgate_server
from tests.support.oidc_fixture import OIDCProvider, oidc_provider
from tests.ui.browser import chromium, log_in_at_provider

__all__ = ["chromium", "oidc_provider"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ui_server(oidc_provider: OIDCProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    args = [*oidc_provider.gateway_args(), "--default-permission", "NO_PERMISSIONS"]
    workdir = tmp_path_factory.mktemp("ui-authz")
    with trackgate_server(workdir, *args, env=oidc_provider.gateway_env(), port=oidc_provider.rp_ports[0]) as s:
        yield s


def signed_in(chromium: Any, base: str, login: str) -> Any:
    page = chromium.new_context().new_page()
    page.goto(base + "/")
    log_in_at_provider(page, login)
    page.wait_for_url(base + "/")
    return page


def test_pages_show_only_what_the_user_may_read(chromium: Any, ui_server: RunningServer, tmp_path: Path) -> None:
    base = ui_server.url
    alice = signed_in(chromium, base, "alice@example.test")
    alice.fill("#new-experiment", "alice-only")
    alice.click("form.create button")
    alice.wait_for_selector("h1:has-text('alice-only')")
    experiment_path = alice.url.removeprefix(base)
    alice.goto(base + "/")
    assert "alice-only" in alice.inner_text("#experiments")  # the creator may manage it

    bob = signed_in(chromium, base, "bob@example.test")
    assert "alice-only" not in bob.inner_text("#experiments")
    refused = bob.goto(base + experiment_path)
    assert refused is not None and refused.status == 403
    assert "PERMISSION_DENIED" in bob.inner_text("main")
    bob.screenshot(path=str(tmp_path / "refused.png"), full_page=True)
    keys = bob.request.get(base + experiment_path + "/keys")  # the column picker's keys: the same check
    assert keys.status == 403 and keys.json()["error_code"] == "PERMISSION_DENIED"
    assert alice.request.get(base + experiment_path + "/keys").json() == {"params": [], "metrics": [], "tags": []}
    forged = bob.request.post(base + experiment_path + "/delete", headers={"Origin": base})
    assert forged.status == 403  # same origin, but Bob may not delete it
    alice.goto(base + "/")
    assert "alice-only" in alice.inner_text("#experiments")
