"""Finding 9 of issue 13: with oidc_redirect_url unset the sign-on URLs come from the Host header,
so a forged Host must never reach them: the Host check refuses it, and a configuration that
accepts every Host must name the public URL."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from gateway.config import ConfigError, load

SSO = {
    "auth": "oidc",
    "oidc_issuer_url": "https://idp.example",
    "oidc_client_id": "trackgate",
    "oidc_client_secret": "s",
    "oidc_email_domains": "example.com",
    "cookie_secret": base64.b64encode(bytes(32)).decode(),
}


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "10.evil.example", "192.168.1.1.evil.example"])
async def test_forged_host_never_reaches_sign_on(gateway_factory: Callable[..., Awaitable[Any]], tracking_db: str,
                                                 host: str) -> None:
    gw = await gateway_factory(backend_store_uri=tracking_db, **SSO)
    async with aiohttp.ClientSession() as s, s.get(gw.url + "/oauth2/start", headers={"Host": host},
                                                   allow_redirects=False) as r:
        assert r.status == 403
        assert host.split(":")[0] not in (await r.text()) + r.headers.get("Location", "")


@pytest.mark.parametrize("opening", [{"allowed_hosts": "*"}, {"disable_security_middleware": "true"}],
                         ids=["any-host", "middleware-off"])
def test_any_host_with_sso_needs_the_public_url(opening: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as caught:
        load({**SSO, **opening}, env={})
    assert any("needs oidc_redirect_url" in p for p in caught.value.problems)
    config = load({**SSO, **opening, "oidc_redirect_url": "https://mlflow.example.com/oauth2/callback"}, env={})
    assert config.oidc_redirect_url == "https://mlflow.example.com/oauth2/callback"
