"""The middleware through a real gateway on loopback (stand-in core echoing what reached it):
who gets a redirect, who gets a 401 and in what shape, what the core receives."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from gateway.auth import methods
from tests.gateway.auth.support import PASSWORD, basic, running_gateway

# One gateway for the module: these tests only read, and starting one takes a second or two.
pytestmark = pytest.mark.asyncio(loop_scope="module")

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gw(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(methods.METHODS, "stub-login", "tests.gateway.auth.stub_login:METHOD")
        async with running_gateway(tmp_path_factory.mktemp("mw"), auth="basic,stub-login") as gateway:
            yield gateway


# (id, method, path, headers, expected status); no credentials in any of them.
DECISIONS = [
    ("page-navigation", "GET", "/", {**BROWSER, "Sec-Fetch-Dest": "document"}, 302),
    ("page-no-fetch-metadata", "GET", "/#/experiments/1", BROWSER, 302),
    ("deep-page", "GET", "/static-files/index.html", BROWSER, 302),
    ("api-path", "GET", "/api/2.0/mlflow/experiments/search", BROWSER, 401),
    ("ajax-api-path", "GET", "/ajax-api/2.0/mlflow/experiments/search", BROWSER, 401),
    ("api-path-dot-segment", "GET", "/x/../api/2.0/mlflow/experiments/search", BROWSER, 401),
    ("json-accept", "GET", "/", {"Accept": "application/json"}, 401),
    ("no-accept", "GET", "/", {}, 401),
    ("fetch-from-script", "GET", "/", {**BROWSER, "Sec-Fetch-Dest": "empty"}, 401),
    ("image", "GET", "/favicon.ico", {**BROWSER, "Sec-Fetch-Dest": "image"}, 401),
    ("iframe", "GET", "/", {**BROWSER, "Sec-Fetch-Dest": "iframe"}, 401),
    ("post-form", "POST", "/", BROWSER, 401),
    ("head", "HEAD", "/", BROWSER, 401),
    ("authorization-present", "GET", "/", {**BROWSER, "Authorization": "Negotiate abc"}, 401),
    ("mlflow-client-shape", "POST", "/api/2.0/mlflow/runs/create", {"User-Agent": "mlflow-python-client/3.17.2"},
     401),
]


@pytest.mark.parametrize(("method", "path", "headers", "status"), [d[1:] for d in DECISIONS],
                         ids=[d[0] for d in DECISIONS])
async def test_redirect_only_for_browser_navigations(gw: Any, method: str, path: str, headers: dict[str, str],
                                                     status: int) -> None:
    async with aiohttp.ClientSession() as s, s.request(method, gw.url + path, headers=headers,
                                                       allow_redirects=False) as r:
        assert r.status == status
        if status == 302:
            assert r.headers["Location"].startswith("/oauth2/start?rd=%2F")
        elif method != "HEAD":
            body = await r.json()
            assert body["error_code"] == "UNAUTHENTICATED" and body["message"]
            assert r.headers.getall("WWW-Authenticate")


async def test_no_credential_401_offers_every_challenge(gw: Any) -> None:
    async with aiohttp.ClientSession() as s, s.get(gw.url + "/api/2.0/mlflow/experiments/search") as r:
        assert r.status == 401 and r.content_type == "application/json"
        assert r.headers.getall("WWW-Authenticate") == ['Basic realm="trackgate", charset="UTF-8"']
        assert "X-Request-Id" in r.headers


async def test_ui_calls_get_no_basic_challenge_when_sso_is_on(gw: Any) -> None:
    # A Basic challenge on the UI's XHR would pop up the browser's password dialog.
    async with aiohttp.ClientSession() as s, s.get(gw.url + "/ajax-api/2.0/mlflow/experiments/search") as r:
        assert r.status == 401
        assert all(not c.startswith("Basic") for c in r.headers.getall("WWW-Authenticate"))


async def test_redirect_keeps_the_path_and_query(gw: Any) -> None:
    async with aiohttp.ClientSession() as s, s.get(gw.url + "/x/y?a=1&b=2", headers=BROWSER,
                                                   allow_redirects=False) as r:
        assert r.status == 302 and r.headers["Location"] == "/oauth2/start?rd=%2Fx%2Fy%3Fa%3D1%26b%3D2"


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/version", "/health"])
async def test_skip_routes_need_no_credential(gw: Any, path: str) -> None:
    async with aiohttp.ClientSession() as s, s.get(gw.url + path) as r:
        assert r.status != 401  # the stand-in core has no /version: 404 from it is fine


async def test_wrong_password_is_final(gw: Any) -> None:
    headers = {**BROWSER, "Authorization": basic("alice", "wrong")}
    async with aiohttp.ClientSession() as s, s.get(gw.url + "/", headers=headers, allow_redirects=False) as r:
        assert r.status == 401  # no redirect, no anonymous fallback
        assert (await r.json())["message"] == "Invalid username or password."
        assert r.headers.getall("WWW-Authenticate") == ['Basic realm="trackgate", charset="UTF-8"']


async def echo(gw: Any, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    async with aiohttp.ClientSession(skip_auto_headers=("User-Agent",)) as s, s.get(
        gw.url + "/echo", headers=headers
    ) as r:
        assert r.status == 200, await r.text()
        return [(k.lower(), v) for k, v in json.loads(await r.text())["headers"]]


SPOOFS = [
    ("trackgate-subject", ("X-Trackgate-Subject", "admin")),
    ("trackgate-lowercase", ("x-trackgate-subject", "admin")),
    ("trackgate-underscore", ("X_Trackgate_Subject", "admin")),
    ("trackgate-groups", ("X-Trackgate-Groups", "admins")),
    ("trackgate-method", ("X-Trackgate-Auth-Method", "mtls")),
    ("trackgate-email", ("X-TRACKGATE-EMAIL", "root@example.com")),
    ("forwarded-user", ("X-Forwarded-User", "admin")),
    ("forwarded-email-underscore", ("X_Forwarded_Email", "root@example.com")),
    ("auth-request-user", ("X-Auth-Request-User", "admin")),
]


@pytest.mark.parametrize("header", [s[1] for s in SPOOFS], ids=[s[0] for s in SPOOFS])
async def test_spoofed_identity_never_reaches_the_core(gw: Any, header: tuple[str, str]) -> None:
    received = await echo(gw, [header, ("Authorization", basic("alice", PASSWORD))])
    identity = {k: v for k, v in received if k.replace("_", "-").startswith(("x-trackgate-", "x-forwarded-u",
                                                                               "x-forwarded-e", "x-auth-"))}
    assert identity == {"x-trackgate-subject": "alice", "x-trackgate-auth-method": "basic"}
    assert "authorization" not in dict(received)  # the consumed credential is not forwarded


async def test_spoofed_identity_without_credentials_is_refused(gw: Any) -> None:
    async with aiohttp.ClientSession() as s, s.get(gw.url + "/echo", headers={"X-Trackgate-Subject": "admin"}) as r:
        assert r.status == 401

