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
from tests.ui.browser import chromium

__all__ = ["chromium", "oidc_provider"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ui_server(oidc_provider: OIDCProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    args = [
        "--auth", "oidc",
        "--oidc-issuer-url", oidc_provider.issuer,
        "--oidc-client-id", oidc_provider.client_id,
        "--oidc-scopes", "openid,email,groups",
        "--oidc-email-domains", "example.test",
        "--default-permission", "NO_PERMISSIONS",
    ]  # fmt: skip
    env = {"TRACKGATE_OIDC_CLIENT_SECRET": oidc_provider.client_secret}
    with trackgate_server(tmp_path_factory.mktemp("ui-authz"), *args, env=env, port=oidc_provider.rp_ports[0]) as s:
        yield s


def signed_in(chromium: Any, base: str, login: str) -> Any:
    page = chromium.new_context().new_page()
    page.goto(base + "/")
    page.wait_for_selector("input[name=login]")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "any password")
    page.click("button[type=submit]")
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
    forged = bob.request.post(base + experiment_path + "/delete", headers={"Origin": base})
    assert forged.status == 403  # same origin, but Bob may not delete it
    alice.goto(base + "/")
    assert "alice-only" in alice.inner_text("#experiments")
