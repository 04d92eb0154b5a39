"""The rules of sign-on that need no provider: redirect targets, allow-lists, session cookies."""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from aiohttp_session import Session
from cryptography.fernet import Fernet

from gateway.auth import allowlist
from gateway.auth.oidc_client import SignOnRefused
from gateway.auth.redirects import safe_redirect
from gateway.auth.session import MAX_COOKIE, SESSION_COOKIE, SessionCookies, _derive, fit, mint_session_cookie
from gateway.config import load

# Every row must come back as "/" (oauth2-proxy's OpenRedirect suite, GHSA-5m6c-jp6f-2vcv, and the
# OWASP cheat sheet's list). `rd` arrives here already query-decoded once.
OPEN_REDIRECTS = [
    ("protocol-relative", "//evil.example"),
    ("backslash", "/\\evil.example"),
    ("backslash-first", "\\\\evil.example"),
    ("triple-slash", "///evil.example"),
    ("scheme-no-slashes", "https:evil.example"),
    ("http", "http://evil.example"),
    ("https", "https://evil.example/x"),
    ("javascript", "javascript:alert(1)"),
    ("javascript-after-slash-encoded", "%2Fjavascript:alert(1)"),
    ("data", "data:text/html,<script>alert(1)</script>"),
    ("encoded-slashes", "/%2F%2Fevil.example"),
    ("encoded-slashes-lower", "/%2f%2fevil.example"),
    ("encoded-backslash", "/%5Cevil.example"),
    ("double-encoded-slashes", "/%252F%252Fevil.example"),
    ("triple-encoded", "/%25252F%25252Fevil.example"),
    ("tab", "/\t/evil.example"),
    ("newline", "/\n/evil.example"),
    ("carriage-return", "/\r/evil.example"),
    ("encoded-tab", "/%09/evil.example"),
    ("encoded-newline", "/%0a/evil.example"),
    ("encoded-cr", "/%0D/evil.example"),
    ("space-first", " //evil.example"),
    ("space", "/ /evil.example"),
    ("nul", "/\x00/evil.example"),
    ("encoded-nul", "/%00"),
    ("unicode-slash", "/\uff0f/evil.example"),
    ("no-leading-slash", "evil.example"),
    ("relative-dot", "./evil"),
    ("userinfo", "//user@evil.example"),
    ("encoded-first-slash", "%2F%2Fevil.example"),
    ("not-utf8", "/%ff"),
    ("too-long", "/" + "a" * 3000),
]

ALLOWED_TARGETS = [
    ("root", "/", "/"),
    ("path", "/version", "/version"),
    ("query", "/#/experiments?x=1", "/#/experiments?x=1"),
    ("encoded-space", "/experiments/a%20b", "/experiments/a%20b"),
    ("encoded-slash-in-query", "/search?next=%2Fruns", "/search?next=%2Fruns"),
    ("utf8", "/models/%C3%BC", "/models/%C3%BC"),
    ("empty", "", "/"),
    ("missing", None, "/"),
]


@pytest.mark.parametrize("target", [r[1] for r in OPEN_REDIRECTS], ids=[r[0] for r in OPEN_REDIRECTS])
def test_open_redirect_attempts_fall_back_to_root(target: str) -> None:
    assert safe_redirect(target) == "/"


@pytest.mark.parametrize(("target", "expected"), [r[1:] for r in ALLOWED_TARGETS], ids=[r[0] for r in ALLOWED_TARGETS])
def test_local_paths_are_kept_exactly(target: str | None, expected: str) -> None:
    assert safe_redirect(target) == expected


# -- allow-lists ---------------------------------------------------------------------------------

SSO = {
    "oidc_issuer_url": "https://idp.example",
    "oidc_client_id": "trackgate",
    "oidc_client_secret": "s",
}

ALLOW = [
    # (id, settings, claims, allowed)
    ("domain", {"oidc_email_domains": "example.com"}, {"email": "a@example.com"}, True),
    ("domain-case", {"oidc_email_domains": "Example.COM"}, {"email": "A@example.com"}, True),
    ("other-domain", {"oidc_email_domains": "example.com"}, {"email": "a@evil.example"}, False),
    ("suffix-is-not-domain", {"oidc_email_domains": "example.com"}, {"email": "a@notexample.com"}, False),
    ("subdomain-not-implied", {"oidc_email_domains": "example.com"}, {"email": "a@eu.example.com"}, False),
    ("dot-subdomains", {"oidc_email_domains": ".example.com"}, {"email": "a@eu.example.com"}, True),
    ("two-ats", {"oidc_email_domains": "example.com"}, {"email": "a@evil.example@example.com"}, False),
    (
        "unverified",
        {"oidc_email_domains": "example.com"},
        {"email": "a@example.com", "email_verified": False},
        False,
    ),
    ("no-email", {"oidc_email_domains": "example.com"}, {}, False),
    ("any-domain", {"oidc_email_domains": "*"}, {"email": "a@anywhere.example"}, True),
    ("listed-email", {"oidc_allowed_emails": "b@partner.example"}, {"email": "B@partner.example"}, True),
    (
        "email-or-domain",
        {"oidc_email_domains": "example.com", "oidc_allowed_emails": "b@partner.example"},
        {"email": "b@partner.example"},
        True,
    ),
    ("group", {"oidc_allowed_groups": "ml-team"}, {"groups": ["x", "ml-team"]}, True),
    ("group-missing", {"oidc_allowed_groups": "ml-team"}, {"groups": ["x"]}, False),
    ("group-string", {"oidc_allowed_groups": "ml-team"}, {"groups": "ml-team"}, True),
    ("group-claim", {"oidc_allowed_groups": "r", "oidc_groups_claim": "roles"}, {"roles": ["r"]}, True),
    (
        "domain-and-group-both-needed",
        {"oidc_email_domains": "example.com", "oidc_allowed_groups": "ml-team"},
        {"email": "a@example.com", "groups": ["other"]},
        False,
    ),
]


@pytest.mark.parametrize(("settings", "claims", "allowed"), [r[1:] for r in ALLOW], ids=[r[0] for r in ALLOW])
def test_allow_lists(settings: dict[str, str], claims: dict[str, Any], allowed: bool) -> None:
    config = load({**SSO, **settings}, {})
    if allowed:
        allowlist.check({"sub": "x", **claims}, config)
    else:
        with pytest.raises(SignOnRefused):
            allowlist.check({"sub": "x", **claims}, config)


# -- session cookies ------------------------------------------------------------------------------

SECRET = bytes(range(32))
HOUR = timedelta(hours=1)


def request_with(cookie: str | None) -> web.Request:
    headers = {"Cookie": f"{SESSION_COOKIE}={cookie}"} if cookie is not None else {}
    return make_mocked_request("GET", "/", headers=headers)


async def test_a_minted_cookie_reads_back() -> None:
    cookie = mint_session_cookie(SECRET, "alice", email="alice@example.test", groups=("ml-team",), lifetime=HOUR)
    data = await SessionCookies(SECRET, HOUR).read(request_with(cookie))
    assert data is not None
    assert (data["sub"], data["email"], data["groups"]) == ("alice", "alice@example.test", ["ml-team"])


async def test_a_cookie_read_again_is_refused_once_it_expires() -> None:
    # Read from memory the second time (no decryption), but never past its exp.
    cookies = SessionCookies(SECRET, HOUR)
    cookie = mint_session_cookie(SECRET, "alice", issued_at=time.time() - 3600 + 1.5, lifetime=HOUR)
    first, second = await cookies.read(request_with(cookie)), await cookies.read(request_with(cookie))
    assert first is not None and first == second
    second["sub"] = "mallory"  # what a caller does with its copy stays its own
    assert (await cookies.read(request_with(cookie)) or {}).get("sub") == "alice"
    while time.time() < first["exp"]:
        await asyncio.sleep(first["exp"] - time.time() + 0.05)
    assert await cookies.read(request_with(cookie)) is None


def _flip(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :]


def _expired() -> str:
    return mint_session_cookie(SECRET, "a", issued_at=time.time() - 7200, lifetime=HOUR)


def _fernet_too_old() -> str:
    # exp still ahead, but the Fernet timestamp is older than the lifetime: refused all the same.
    plain = b'{"created": 1, "session": {"sub": "a", "groups": [], "exp": 99999999999}}'
    return _fernet_at(plain, 1)


def _fernet_at(plain: bytes, when: int) -> str:
    key = base64.urlsafe_b64encode(_derive(SECRET, b"session cookie v1"))
    return Fernet(key).encrypt_at_time(plain, when).decode()


REFUSED = [
    ("absent", lambda: None),
    ("garbage", lambda: "not-a-cookie"),
    ("tampered-middle", lambda: _flip(mint_session_cookie(SECRET, "a", lifetime=HOUR), 60)),
    ("tampered-mac", lambda: _flip(mint_session_cookie(SECRET, "a", lifetime=HOUR), -5)),
    ("other-secret", lambda: mint_session_cookie(bytes(32), "a", lifetime=HOUR)),
    ("expired", _expired),
    ("older-than-lifetime", _fernet_too_old),
    ("no-subject", lambda: _fernet_at(b'{"created": 0, "session": {"exp": 99999999999}}', int(time.time()))),
]


@pytest.mark.parametrize("make", [r[1] for r in REFUSED], ids=[r[0] for r in REFUSED])
async def test_bad_cookies_are_not_a_session(make: Any) -> None:
    assert await SessionCookies(SECRET, HOUR).read(request_with(make())) is None


def test_a_large_session_drops_the_refresh_token_then_the_groups() -> None:
    session = Session(None, data=None, new=True, max_age=3600)
    session.update({"sub": "a", "exp": 1, "rt": "r" * 400, "groups": [f"group-{i:04}" for i in range(300)]})
    fitted = fit(session)
    assert fitted is not None and "rt" not in fitted and "groups" not in fitted
    session = Session(None, data=None, new=True, max_age=3600)
    session.update({"sub": "a", "exp": 1, "rt": "r" * 600, "groups": ["ml-team"]})
    fitted = fit(session)
    assert fitted is not None and "rt" not in fitted and fitted["groups"] == ["ml-team"]  # too long a token
    assert MAX_COOKIE < 4096


@pytest.mark.parametrize(("always_secure", "tls"), [(False, False), (False, True), (True, False)])
async def test_cookies_are_secure_over_tls_or_an_https_public_url(always_secure: bool, tls: bool) -> None:
    cookies = SessionCookies(SECRET, HOUR, always_secure=always_secure)
    request = make_mocked_request("GET", "/", sslcontext=ssl.create_default_context() if tls else None)
    response = web.Response()
    await cookies.write(request, response, {"sub": "a"})
    header = response.headers["Set-Cookie"]
    assert header.startswith(SESSION_COOKIE + "=") and "HttpOnly" in header and "SameSite=Lax" in header
    assert ("Secure" in header) == (always_secure or tls)
