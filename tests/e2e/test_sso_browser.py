"""Single sign-on in a real browser: Chromium (Playwright) against two `trackgate server` replicas
(one database, no configured cookie secret: the generated one is shared through the database) and
a real OpenID provider (oidc-provider), all on 127.0.0.1.

One browser per module, one context (a clean cookie jar) per test.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.auth.session import SESSION_COOKIE, mint_session_cookie
from gateway.config import decode_cookie_secret
from tests.server_process import RunningServer, trackgate_server
from tests.support.oidc_fixture import OIDCProvider, oidc_provider
from tests.ui.browser import chromium, log_in_at_provider

__all__ = ["chromium", "oidc_provider"]


@pytest.fixture(scope="module")
def replicas(oidc_provider: OIDCProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RunningServer]]:
    """Two replicas on one SQLite database, started one after the other."""
    workdir = tmp_path_factory.mktemp("sso")
    args = [
        *oidc_provider.gateway_args(),
        "--session-lifetime", "1h",
        "--backend-store-uri", f"sqlite:///{workdir}/shared.db",
    ]  # fmt: skip
    env = oidc_provider.gateway_env()
    with (
        trackgate_server(workdir / "a", *args, env=env, port=oidc_provider.rp_ports[0]) as first,
        trackgate_server(workdir / "b", *args, env=env, port=oidc_provider.rp_ports[1]) as second,
    ):
        yield [first, second]


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context()
    yield context.new_page()
    context.close()


def session_cookie(page: Any) -> dict[str, Any] | None:
    return next((c for c in page.context.cookies() if c["name"] == SESSION_COOKIE), None)


def stored_secret(server: RunningServer) -> bytes:
    """The cookie secret the first replica generated and keeps in the shared database."""
    uri = next(a for a in server.process.args if str(a).startswith("sqlite:///"))  # type: ignore[union-attr]
    with sqlite3.connect(str(uri)[len("sqlite:///") :]) as db:
        (value,) = db.execute("SELECT value FROM gateway_secrets WHERE name = 'session_cookie_secret'").fetchone()
    return decode_cookie_secret(value)


def put_session_cookie(page: Any, value: str, url: str) -> None:
    page.context.clear_cookies(name=SESSION_COOKIE)
    page.context.add_cookies([{"name": SESSION_COOKIE, "value": value, "url": url}])


def api_status(page: Any, url: str) -> int:
    return int(page.request.get(url + "/api/2.0/mlflow/experiments/search?max_results=5").status)


# -- the tests ------------------------------------------------------------------------------------


def test_sign_in_lands_on_the_page_asked_for(
    page: Any, replicas: list[RunningServer], oidc_provider: OIDCProvider, tmp_path: Path
) -> None:
    base = replicas[0].url
    page.goto(base + "/oauth2/userinfo")
    assert "Not signed in" in page.inner_text("h1")
    # A protected page: the gateway sends the browser to sign in, and back here afterwards.
    page.goto(base + "/?view=experiments")
    assert page.url.startswith(oidc_provider.issuer)
    log_in_at_provider(page, "alice@example.test")
    page.wait_for_url(base + "/?view=experiments")
    page.goto(base + "/oauth2/userinfo")
    assert page.inner_text("h1") == "Signed in as alice@example.test"
    assert "ml-team" in page.inner_text("body")
    page.screenshot(path=str(tmp_path / "sso-signed-in.png"))  # what a person sees
    cookie = session_cookie(page)
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Lax" and not cookie["secure"]
    assert api_status(page, base) == 200  # the session opens the API (the web UI's calls)
    info = json.loads(page.request.get(base + "/oauth2/userinfo").text())
    assert info == {
        "user": "alice@example.test",
        "email": "alice@example.test",
        "groups": ["ml-team"],
        "method": "oidc",
    }


def test_a_second_replica_accepts_the_session(page: Any, replicas: list[RunningServer]) -> None:
    first, second = replicas
    page.goto(first.url + "/")
    log_in_at_provider(page, "bob@example.test")
    page.wait_for_url(first.url + "/")
    # Cookies are not port-scoped: the same cookie goes to the other replica, which has never
    # seen this browser and shares only the database (and through it the cookie secret).
    page.goto(second.url + "/oauth2/userinfo")
    assert page.inner_text("h1") == "Signed in as bob@example.test"
    assert api_status(page, second.url) == 200


def test_sign_out(page: Any, replicas: list[RunningServer]) -> None:
    base = replicas[0].url
    page.goto(base + "/")
    log_in_at_provider(page, "carol@example.test")
    page.wait_for_url(base + "/")
    page.goto(base + "/oauth2/userinfo")
    page.click("text=Sign out")
    page.wait_for_url(base + "/oauth2/sign_out")
    assert page.inner_text("h1") == "Signed out"
    assert session_cookie(page) is None
    assert api_status(page, base) == 401
    page.goto(base + "/oauth2/userinfo")
    assert "Not signed in" in page.inner_text("h1")


def test_a_tampered_cookie_is_not_a_session(
    page: Any, replicas: list[RunningServer], oidc_provider: OIDCProvider
) -> None:
    base = replicas[0].url
    page.goto(base + "/")
    log_in_at_provider(page, "dave@example.test")
    page.wait_for_url(base + "/")
    cookie = session_cookie(page)
    assert cookie is not None
    value = cookie["value"]
    tampered = value[:50] + ("A" if value[50] != "A" else "B") + value[51:]
    put_session_cookie(page, tampered, base)
    assert api_status(page, base) == 401
    page.goto(base + "/oauth2/userinfo")
    assert "Not signed in" in page.inner_text("h1")


def test_an_expired_cookie_is_not_a_session(
    page: Any, replicas: list[RunningServer], oidc_provider: OIDCProvider
) -> None:
    base = replicas[0].url
    secret = stored_secret(replicas[0])
    hour = timedelta(hours=1)
    fresh = mint_session_cookie(secret, "erin@example.test", email="erin@example.test", lifetime=hour)
    put_session_cookie(page, fresh, base)
    assert api_status(page, base) == 200  # the helper mints what a sign-in issues...
    expired = mint_session_cookie(secret, "erin@example.test", issued_at=time.time() - 7200, lifetime=hour)
    put_session_cookie(page, expired, base)
    assert api_status(page, base) == 401  # ...and an old one is refused
    page.goto(base + "/")
    assert page.url.startswith(oidc_provider.issuer)  # a browser is sent to sign in again


def test_a_user_outside_the_domain_allow_list_is_refused(page: Any, replicas: list[RunningServer]) -> None:
    base = replicas[0].url
    page.goto(base + "/")
    log_in_at_provider(page, "mallory@evil.example")
    page.wait_for_url(base + "/oauth2/callback**")
    assert page.inner_text("h1") == "Sign-in refused"
    assert "mallory@evil.example is not allowed to sign in" in page.inner_text("body")
    assert session_cookie(page) is None
    assert api_status(page, base) == 401


def test_the_cookie_secret_is_kept_in_the_database(replicas: list[RunningServer]) -> None:
    assert len(stored_secret(replicas[0])) == 32
    assert base64.b64encode(stored_secret(replicas[0])).decode() not in replicas[0].log()
