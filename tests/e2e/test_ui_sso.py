"""The web UI behind SSO and a static prefix: Chromium, `trackgate server --auth oidc
--static-prefix /mlflow`, and a real OpenID provider (oidc-provider), all on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server_process import RunningServer, trackgate_server
from tests.support.oidc_fixture import STATIC_PREFIX, OIDCProvider, oidc_provider
from tests.ui.browser import Watched, axe_violations, chromium, describe, log_in_at_provider, watched

__all__ = ["chromium", "oidc_provider", "watched"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ui_server(oidc_provider: OIDCProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    args = [*oidc_provider.gateway_args(), "--static-prefix", STATIC_PREFIX]
    workdir = tmp_path_factory.mktemp("ui-sso")
    with trackgate_server(workdir, *args, env=oidc_provider.gateway_env(), port=oidc_provider.rp_ports[0]) as s:
        yield s


def test_sign_in_lands_on_the_ui_page_and_sign_out(
    watched: Watched, ui_server: RunningServer, oidc_provider: OIDCProvider, tmp_path: Path
) -> None:
    page = watched.page
    base = ui_server.url + STATIC_PREFIX
    asked = base + "/?q=demo"
    page.goto(asked)
    assert page.url.startswith(oidc_provider.issuer)  # sent to sign in
    log_in_at_provider(page, "alice@example.test")
    page.wait_for_url(asked)  # ...and back on the page asked for
    watched.foreign.clear()  # the provider's pages were another host, by design
    watched.errors.clear()
    page.reload()
    page.wait_for_load_state("networkidle")
    assert "Signed in as alice@example.test" in page.inner_text("header")
    page.screenshot(path=str(tmp_path / "signed-in.png"), full_page=True)

    # Create an experiment through the page: the Origin check passes behind the gateway.
    page.goto(base + "/")
    page.fill("#new-experiment", "sso-made")
    page.click("form.create button")
    page.wait_for_selector("h1:has-text('sso-made')")
    assert page.url.startswith(base + "/experiments/")
    page.wait_for_load_state("networkidle")
    bad = axe_violations(page)
    assert not bad, describe(bad)
    watched.check_clean()

    # The page's API calls with a session work; without one they get MLflow JSON errors.
    assert page.request.get(base + "/ajax-api/2.0/mlflow/experiments/search?max_results=5").status == 200
    page.click("header >> text=Sign out")
    page.wait_for_url("**/oauth2/sign_out**")
    anonymous = page.request.get(base + "/ajax-api/2.0/mlflow/experiments/search?max_results=5")
    assert anonymous.status == 401
    assert anonymous.json()["error_code"] == "UNAUTHENTICATED"
