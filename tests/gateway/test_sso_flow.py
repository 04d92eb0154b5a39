"""The sign-on routes against a real OpenID provider (oidc-provider on loopback): state, nonce and
PKCE failures, replayed codes, allow-lists, sign-out, userinfo and session refresh.

The gateway side is the sign-on method alone, opened the way the registry opens it, in a small
app on the port whose callback the provider has registered, with one protected route.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.fernet import Fernet

from gateway import keys
from gateway.auth.oidc import add_routes, open_sso
from gateway.auth.session import SESSION_COOKIE, SessionCookies, _derive, login_cookie_name, mint_session_cookie
from gateway.config import Config, load
from tests.support.oidc_fixture import OIDCProvider, login_without_browser, oidc_provider

__all__ = ["oidc_provider"]  # the module-scoped provider fixture, used by name below

SECRET = bytes(range(1, 33))
LIFETIME = timedelta(hours=1)  # session_lifetime of sso_config


def sso_config(provider: OIDCProvider, **overrides: str) -> Config:
    settings = {
        "oidc_issuer_url": provider.issuer,
        "oidc_client_id": provider.client_id,
        "oidc_client_secret": provider.client_secret,
        "oidc_scopes": "openid,email,groups",
        "oidc_email_domains": "example.test",
        "cookie_secret": base64.b64encode(SECRET).decode(),
        "session_lifetime": "1h",
        **overrides,
    }
    return load(settings, {})


async def protected(request: web.Request) -> web.Response:
    authenticator = request.app[keys.sso].authenticator
    assert authenticator is not None
    identity = await authenticator.authenticate(request)
    if identity is None:
        return web.json_response({"error_code": "UNAUTHENTICATED"}, status=401)
    return web.json_response({"sub": identity.subject, "email": identity.email, "groups": list(identity.groups)})


@pytest.fixture
async def gateway(oidc_provider: OIDCProvider) -> AsyncIterator[Callable[..., Any]]:
    """Start the sign-on app with the given setting overrides; returns its base URL."""
    servers: list[TestServer] = []

    async def start(**overrides: str) -> str:
        app = web.Application()
        app[keys.config] = sso_config(oidc_provider, **overrides)
        add_routes(app)

        async def opened(app: web.Application) -> AsyncIterator[None]:
            async with open_sso(app):
                yield

        app.cleanup_ctx.append(opened)
        app.router.add_get("/protected", protected)
        server = TestServer(app, host="127.0.0.1", port=oidc_provider.rp_ports[0])
        await server.start_server()
        servers.append(server)
        return oidc_provider.rp_url(0)

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
def browser() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def sign_in(browser: requests.Session, url: str, login: str = "alice@example.test", **kw: Any) -> requests.Response:
    return login_without_browser(browser, url, login, **kw)


async def in_thread(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    # requests is blocking; the app under test runs on this event loop.
    return await asyncio.to_thread(function, *args, **kwargs)


def put_cookie(browser: requests.Session, name: str, value: str, path: str = "/") -> None:
    """Replace the browser's cookie `name` (as a tampering user or a test helper would)."""
    for cookie in [c for c in browser.cookies if c.name == name]:
        browser.cookies.clear(cookie.domain, cookie.path, cookie.name)
    browser.cookies.set(name, value, domain="127.0.0.1", path=path)


def session_data(browser: requests.Session) -> dict[str, Any]:
    """Decrypt the browser's session cookie, as a replica holding the secret would."""
    fernet = Fernet(base64.urlsafe_b64encode(_derive(SECRET, b"session cookie v1")))
    return dict(json.loads(fernet.decrypt(browser.cookies[SESSION_COOKIE].encode()))["session"])


# -- signing in -----------------------------------------------------------------------------------


async def test_sign_in_lands_on_rd_with_the_identity(gateway: Any, browser: requests.Session) -> None:
    base = await gateway()
    seen: list[requests.Response] = []
    final = await in_thread(sign_in, browser, f"{base}/oauth2/start?rd=/protected%3Fx%3D1", seen=seen)
    assert final.status_code == 200, final.text
    assert final.url == f"{base}/protected?x=1"
    assert final.json() == {"sub": "alice@example.test", "email": "alice@example.test", "groups": ["ml-team"]}
    authorize = next(r for r in seen if r.url.startswith(base + "/oauth2/start"))
    query = parse_qs(urlsplit(authorize.headers["Location"]).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["state"][0] and query["nonce"][0] and query["state"] != query["nonce"]
    issued = next(r for r in seen if r.url.startswith(base + "/oauth2/callback"))
    cookie = next(v for v in issued.raw.headers.getlist("Set-Cookie") if v.startswith(SESSION_COOKIE + "="))
    attributes = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "max-age", "path", "samesite"} <= attributes and "secure" not in attributes  # plain http
    assert "samesite=lax" in cookie.lower() and "max-age=3600" in cookie.lower()
    assert len(cookie) < 1500
    assert "rt" in session_data(browser)  # the provider's refresh token is short enough to keep
    info = await in_thread(browser.get, f"{base}/oauth2/userinfo")
    assert info.json() == {
        "user": "alice@example.test",
        "email": "alice@example.test",
        "groups": ["ml-team"],
        "method": "oidc",
    }


OPEN_REDIRECTS = [
    "//evil.example",
    "/\\evil.example",
    "https:evil.example",
    "http://evil.example",
    "/%2F%2Fevil.example",
    "/%5Cevil.example",
    "/%09/evil.example",
    "javascript:alert(1)",
]


@pytest.mark.parametrize("rd", OPEN_REDIRECTS, ids=OPEN_REDIRECTS)
async def test_open_redirect_attempts_land_on_root(gateway: Any, browser: requests.Session, rd: str) -> None:
    base = await gateway()
    seen: list[requests.Response] = []
    await in_thread(sign_in, browser, f"{base}/oauth2/start?rd={requests.utils.quote(rd, safe='')}", seen=seen)
    callback = next(r for r in seen if r.url.startswith(base + "/oauth2/callback"))
    assert callback.status_code == 302 and callback.headers["Location"] == "/"


async def test_a_user_outside_the_allow_list_is_refused(gateway: Any, browser: requests.Session) -> None:
    base = await gateway()
    final = await in_thread(sign_in, browser, f"{base}/oauth2/start?rd=/protected", "mallory@evil.example")
    assert final.status_code == 403
    assert "mallory@evil.example is not allowed to sign in" in final.text
    assert SESSION_COOKIE not in browser.cookies
    assert (await in_thread(browser.get, f"{base}/protected")).status_code == 401


async def test_group_allow_list(gateway: Any, browser: requests.Session) -> None:
    base = await gateway(oidc_email_domains="", oidc_allowed_groups="ml-admins")
    refused = await in_thread(sign_in, browser, f"{base}/oauth2/start?rd=/protected", "bob@example.test")
    assert refused.status_code == 403 and "not in a group" in refused.text
    browser.cookies.clear()
    admitted = await in_thread(sign_in, browser, f"{base}/oauth2/start?rd=/protected", "admin@example.test")
    assert admitted.json()["groups"] == ["ml-team", "ml-admins"]


async def test_under_a_static_prefix(gateway: Any, browser: requests.Session) -> None:
    base = await gateway(static_prefix="/mlflow")
    seen: list[requests.Response] = []
    final = await in_thread(sign_in, browser, f"{base}/mlflow/oauth2/start?rd=/protected", seen=seen)
    assert final.url == f"{base}/protected" and final.json()["sub"] == "alice@example.test"
    start = next(r for r in seen if r.url.startswith(base + "/mlflow/oauth2/start"))
    assert "Path=/mlflow/oauth2/" in start.headers["Set-Cookie"]
    redirect_uri = parse_qs(urlsplit(start.headers["Location"]).query)["redirect_uri"]
    assert redirect_uri == [f"{base}/mlflow/oauth2/callback"]


# -- state, nonce, PKCE, replay -------------------------------------------------------------------


async def stop_at_callback(base: str, browser: requests.Session) -> str:
    """Sign in at the provider, but stop before the browser reaches our callback; its URL."""
    redirect = await in_thread(sign_in, browser, f"{base}/oauth2/start", stop_before=base + "/oauth2/callback")
    return str(redirect.headers["Location"])


async def test_a_wrong_state_is_refused(gateway: Any, browser: requests.Session) -> None:
    base = await gateway()
    url = await stop_at_callback(base, browser)
    state = parse_qs(urlsplit(url).query)["state"][0]
    forged = url.replace(f"state={state}", "state=forged-state")
    response = await in_thread(browser.get, forged, allow_redirects=False)
    assert response.status_code == 400 and "Sign-in expired" in response.text
    assert SESSION_COOKIE not in browser.cookies


async def test_a_callback_from_another_browser_is_refused(gateway: Any, browser: requests.Session) -> None:
    base = await gateway()
    url = await stop_at_callback(base, browser)
    with requests.Session() as other:  # login CSRF: the victim's browser never started this sign-in
        response = await in_thread(other.get, url, allow_redirects=False)
    assert response.status_code == 400


async def test_a_replayed_code_is_refused(gateway: Any, browser: requests.Session) -> None:
    base = await gateway()
    url = await stop_at_callback(base, browser)
    state = parse_qs(urlsplit(url).query)["state"][0]
    login_cookie = browser.cookies[login_cookie_name(state)]
    first = await in_thread(browser.get, url, allow_redirects=False)
    assert first.status_code == 302 and SESSION_COOKIE in browser.cookies
    # Replayed as is: the sign-in was used up (its cookie is gone).
    assert (await in_thread(browser.get, url, allow_redirects=False)).status_code == 400
    # Replayed with the sign-in cookie put back: the provider refuses the used code.
    put_cookie(browser, login_cookie_name(state), login_cookie, path="/oauth2/")
    replay = await in_thread(browser.get, url, allow_redirects=False)
    assert replay.status_code == 403 and "code was used or expired" in replay.text


@pytest.mark.parametrize("field", ["verifier", "nonce"])
async def test_a_wrong_pkce_verifier_or_nonce_is_refused(gateway: Any, browser: requests.Session, field: str) -> None:
    base = await gateway()
    url = await stop_at_callback(base, browser)
    state = parse_qs(urlsplit(url).query)["state"][0]
    # Re-mint this browser's sign-in cookie with one value changed (we hold the secret).
    cookies = SessionCookies(SECRET, LIFETIME)
    fernet = cookies._login
    values = json.loads(fernet.decrypt(browser.cookies[login_cookie_name(state)].encode()))
    values[field] = "x" * 43
    put_cookie(browser, login_cookie_name(state), fernet.encrypt(json.dumps(values).encode()).decode(), "/oauth2/")
    response = await in_thread(browser.get, url, allow_redirects=False)
    assert response.status_code == 403
    assert SESSION_COOKIE not in browser.cookies


async def test_a_provider_error_is_a_readable_page(gateway: Any, browser: requests.Session) -> None:
    base = await gateway()
    response = await in_thread(
        browser.get, f"{base}/oauth2/callback?error=access_denied&error_description=<b>no</b>&state=x"
    )
    assert response.status_code == 403 and "&lt;b&gt;no&lt;/b&gt;" in response.text


# -- signing out, userinfo --------------------------------------------------------------------------


async def test_sign_out_clears_the_session(gateway: Any, browser: requests.Session) -> None:
    base = await gateway()
    await in_thread(sign_in, browser, f"{base}/oauth2/start?rd=/protected")
    out = await in_thread(browser.get, f"{base}/oauth2/sign_out?rd=//evil.example", allow_redirects=False)
    assert out.status_code == 302 and out.headers["Location"] == "/"
    assert SESSION_COOKIE not in browser.cookies
    assert (await in_thread(browser.get, f"{base}/protected")).status_code == 401
    await in_thread(sign_in, browser, f"{base}/oauth2/start")
    page = await in_thread(browser.get, f"{base}/oauth2/sign_out", allow_redirects=False)
    assert page.status_code == 200 and "Signed out" in page.text and SESSION_COOKIE not in browser.cookies
    userinfo = await in_thread(browser.get, f"{base}/oauth2/userinfo")
    assert userinfo.status_code == 401 and userinfo.json()["error_code"] == "UNAUTHENTICATED"


async def test_sign_out_at_the_provider_too(
    gateway: Any, browser: requests.Session, oidc_provider: OIDCProvider
) -> None:
    base = await gateway(oidc_end_session="true")
    await in_thread(sign_in, browser, f"{base}/oauth2/start")
    out = await in_thread(browser.get, f"{base}/oauth2/sign_out?rd=/bye", allow_redirects=False)
    location = urlsplit(out.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == oidc_provider.discovery()["end_session_endpoint"]
    assert parse_qs(location.query) == {"client_id": ["trackgate"], "post_logout_redirect_uri": [base + "/bye"]}
    assert SESSION_COOKIE not in browser.cookies


# -- refresh ------------------------------------------------------------------------------------------


async def test_a_session_past_half_life_is_refreshed_at_the_provider(gateway: Any, browser: requests.Session) -> None:
    base = await gateway()
    await in_thread(sign_in, browser, f"{base}/oauth2/start")
    refresh_token = session_data(browser)["rt"]
    old = mint_session_cookie(
        SECRET,
        "alice@example.test",
        email="alice@example.test",
        groups=("ml-team",),
        issued_at=time.time() - 2400,
        lifetime=LIFETIME,
        refresh_token=refresh_token,
    )
    put_cookie(browser, SESSION_COOKIE, old)
    response = await in_thread(browser.get, f"{base}/protected")
    assert response.status_code == 200 and response.json()["sub"] == "alice@example.test"
    renewed = session_data(browser)
    assert renewed["exp"] > time.time() + 3000  # a fresh lifetime, not the old one's 1200 s
    assert renewed["groups"] == ["ml-team"] and renewed.get("rt")


async def test_a_revoked_refresh_token_ends_the_session(gateway: Any, browser: requests.Session) -> None:
    base = await gateway()
    old = mint_session_cookie(
        SECRET,
        "alice@example.test",
        issued_at=time.time() - 2400,
        lifetime=LIFETIME,
        refresh_token="not-a-refresh-token",
    )
    put_cookie(browser, SESSION_COOKIE, old)
    response = await in_thread(browser.get, f"{base}/protected")
    assert response.status_code == 401
    assert SESSION_COOKIE not in browser.cookies  # cleared on the way out
