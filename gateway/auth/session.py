"""Browser sessions: an encrypted cookie that any replica with the same secret can read.

The cookie (`trackgate_session`; not `_session`, which an identity provider on the same host may
use too: cookies are not port-scoped) is aiohttp-session's EncryptedCookieStorage (Fernet: AES
plus HMAC, with a timestamp). It holds only the subject, email, groups, expiry and, if short, a
refresh token; never an ID or access token, so it stays far below the 4 KB a browser keeps.

The storage is used directly rather than through aiohttp-session's middleware: that middleware
saves the session after the handler returns, which a proxied response streamed to the client has
already outrun. A refreshed session is written from `on_response_prepare` instead, which every
response passes before its headers leave.

A missing, tampered or expired cookie is simply "not signed in" (None): the browser is sent to
sign in again; it is not a 401 of a bad credential.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
import weakref
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from aiohttp import hdrs, web
from aiohttp_session import Session
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.auth import allowlist
from gateway.auth.base import Consumed, Identity
from gateway.auth.oidc_client import OIDCClient, ProviderError, SignOnRefused
from gateway.config import Config

log = logging.getLogger("trackgate.auth.session")

SESSION_COOKIE = "trackgate_session"
LOGIN_COOKIE_PREFIX = "trackgate_login_"  # + a digest of the state: parallel sign-ins stay apart
LOGIN_TTL = 600  # seconds a sign-in may take at the provider (oauth2-proxy: 15 min)
MAX_COOKIE = 3800  # browsers keep 4096 bytes per cookie, name and attributes included
MAX_REFRESH_TOKEN = 512  # longer refresh tokens (some are JWTs) are dropped, not stored
# A session cookie read recently is not decrypted again (AES + HMAC: ~15 us of every request of a
# browser or a notebook on SSO): kept at most this long, never past its exp or its lifetime.
RECENT_SECONDS = 30.0
MAX_RECENT = 4096


def _derive(secret: bytes, purpose: bytes) -> bytes:
    # One configured secret, a separate key per use: a login cookie can never pass as a session.
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"trackgate " + purpose).derive(secret)


class SessionCookies:
    """Reads and writes the session cookie and the short-lived sign-in cookies."""

    def __init__(
        self, secret: bytes, lifetime: timedelta, *, always_secure: bool = False, login_path: str = "/oauth2/"
    ) -> None:
        self.lifetime = int(lifetime.total_seconds())
        self._always_secure = always_secure
        self._login_path = login_path  # sign-in cookies go only to the /oauth2/ routes
        key = _derive(secret, b"session cookie v1")
        # Secure only when the browser reached us over TLS (a plain-http Secure cookie is never
        # sent back: a login loop), so one storage per scheme; both read the same cookies.
        self._storages = {
            secure: EncryptedCookieStorage(
                key,
                cookie_name=SESSION_COOKIE,
                max_age=self.lifetime,
                secure=secure,
                httponly=True,
                samesite="Lax",  # sent on top-level navigations back from the provider
            )
            for secure in (False, True)
        }
        self._login = Fernet(base64.urlsafe_b64encode(_derive(secret, b"login cookie v1")))
        self._session_fernet = Fernet(base64.urlsafe_b64encode(key))  # the storages' key: for timestamps
        # SHA-256 of a cookie read -> (its data, until when it may be taken without decrypting it).
        self._recent: dict[bytes, tuple[dict[str, Any], float]] = {}

    def secure(self, request: web.Request) -> bool:
        """Mark cookies Secure? When the browser reached us over TLS (behind a trusted proxy, the
        forwarding middleware has made the request's scheme the browser's), and always when the
        public callback URL is https (Cloud Run: TLS ends in front of us, no proxy to trust)."""
        return self._always_secure or request.secure

    # -- the session --------------------------------------------------------------------------------

    async def read(self, request: web.Request) -> dict[str, Any] | None:
        """The session's data, or None (no cookie, tampered, older than the lifetime, expired)."""
        value = request.cookies.get(SESSION_COOKIE)
        if value is None:
            return None
        digest = hashlib.sha256(value.encode()).digest()
        now = time.time()
        if (recent := self._recent.get(digest)) is not None:
            if now < recent[1]:
                return dict(recent[0])
            del self._recent[digest]
        session = await self._storages[False].load_session(request)
        if session.new or session.empty:
            return None
        data = dict(session)
        if not isinstance(data.get("sub"), str) or not isinstance(data.get("exp"), int | float):
            return None
        if data["exp"] <= now:
            return None
        data["iat"] = session.created
        # Good without decrypting until the first of: its exp, the end of its lifetime as Fernet
        # counts it (from the token's own timestamp), RECENT_SECONDS from now.
        issued = self._session_fernet.extract_timestamp(value.encode())
        if len(self._recent) >= MAX_RECENT:
            self._recent.clear()
        self._recent[digest] = (dict(data), min(data["exp"], issued + self.lifetime, now + RECENT_SECONDS))
        return data

    async def write(self, request: web.Request, response: web.StreamResponse, data: Mapping[str, Any]) -> None:
        """Issue a new session cookie for `data` (sub, email, groups, and optionally rt)."""
        now = int(time.time())
        session = Session(None, data=None, new=True, max_age=self.lifetime)
        for name in ("sub", "email", "groups", "rt"):
            if data.get(name) is not None:
                session[name] = list(data[name]) if name == "groups" else data[name]
        # A given exp is kept (a session re-issued without a refresh must not be extended).
        session["exp"] = int(data["exp"]) if data.get("exp") else now + self.lifetime
        session.max_age = max(1, session["exp"] - now)
        fitted = fit(session)
        if fitted is None:
            raise CookieTooLarge()
        scratch = web.StreamResponse()
        await self._storages[self.secure(request)].save_session(request, scratch, fitted)
        _copy_cookies(scratch, response)

    def clear(self, request: web.Request, response: web.StreamResponse) -> None:
        scratch = web.StreamResponse()
        scratch.del_cookie(SESSION_COOKIE, path="/", secure=self.secure(request), httponly=True, samesite="Lax")
        _copy_cookies(scratch, response)

    # -- a sign-in in progress ------------------------------------------------------------------------

    def begin_login(self, request: web.Request, response: web.StreamResponse, state: str, **values: str) -> None:
        """Remember state, nonce, PKCE verifier and rd for the callback, bound to this browser."""
        token = self._login.encrypt(json.dumps({"state": state, **values}).encode()).decode()
        response.set_cookie(
            login_cookie_name(state),
            token,
            max_age=LOGIN_TTL,
            path=self._login_path,
            secure=self.secure(request),
            httponly=True,
            samesite="Lax",
        )

    def take_login(self, request: web.Request, response: web.StreamResponse, state: str) -> dict[str, str] | None:
        """The values begun with `state` (and forget them: a callback works once), or None."""
        name = login_cookie_name(state)
        token = request.cookies.get(name)
        if token is None:
            return None
        response.del_cookie(name, path=self._login_path, secure=self.secure(request), httponly=True, samesite="Lax")
        try:
            values = json.loads(self._login.decrypt(token.encode(), ttl=LOGIN_TTL))
        except (InvalidToken, ValueError):
            return None
        return values if isinstance(values, dict) else None


def _copy_cookies(source: web.StreamResponse, target: web.StreamResponse) -> None:
    # As Set-Cookie headers, not response.set_cookie: aiohttp turns a response's cookies into
    # headers before on_response_prepare runs, so a cookie set there would be lost.
    for morsel in source.cookies.values():
        target.headers.add(hdrs.SET_COOKIE, morsel.OutputString())


class CookieTooLarge(Exception):
    """Even without its refresh token and optional groups, the session would not fit a cookie."""


def fit(session: Session) -> Session | None:
    """The session, trimmed to fit a cookie: first the refresh token goes, then the groups."""
    if len(str(session.get("rt", ""))) > MAX_REFRESH_TOKEN:
        del session["rt"]
    for drop in ("rt", "groups"):
        if _estimated_size(session) <= MAX_COOKIE:
            return session
        if drop in session:
            log.warning("session of %s too large for a cookie: %s dropped", session.get("sub"), drop)
            del session[drop]
    return session if _estimated_size(session) <= MAX_COOKIE else None


def _estimated_size(session: Session) -> int:
    plain = len(json.dumps({"created": session.created, "session": dict(session)}))
    # Fernet: 57 bytes of header and MAC plus padding to 16, all base64-encoded; plus attributes.
    return (57 + (plain // 16 + 1) * 16) * 4 // 3 + 200


def login_cookie_name(state: str) -> str:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(state.encode())
    return LOGIN_COOKIE_PREFIX + base64.urlsafe_b64encode(digest.finalize()).decode()[:16]


def mint_session_cookie(
    secret: bytes,
    subject: str,
    *,
    email: str | None = None,
    groups: tuple[str, ...] = (),
    issued_at: float | None = None,
    lifetime: timedelta = timedelta(hours=1),
    refresh_token: str | None = None,
) -> str:
    """A session cookie value for an identity, as a sign-in would issue it, at any moment. The
    tests use it to reach an expired or half-used session without waiting. It writes what
    aiohttp-session's encrypted storage writes, under the key `SessionCookies` derives; the SSO
    tests sign in with such cookies, so a drift between the two fails them."""
    issued = int(time.time() if issued_at is None else issued_at)
    data: dict[str, Any] = {
        "sub": subject,
        "groups": list(groups),
        "exp": issued + int(lifetime.total_seconds()),
    }
    if email is not None:
        data["email"] = email
    if refresh_token is not None:
        data["rt"] = refresh_token
    plain = json.dumps({"created": issued, "session": data}).encode()
    fernet = Fernet(base64.urlsafe_b64encode(_derive(secret, b"session cookie v1")))
    return fernet.encrypt_at_time(plain, issued).decode()


class SessionAuthenticator:
    """`--auth oidc`: the identity in a valid session cookie. A session past half its lifetime
    that has a refresh token is refreshed at the provider (and the allow-lists are checked again
    on what it says now); without a refresh token it ends when its lifetime does."""

    name = "oidc"
    consumed = Consumed(cookies=frozenset({SESSION_COOKIE}))

    def __init__(self, cookies: SessionCookies, client: OIDCClient | None, config: Config) -> None:
        self.cookies = cookies
        self._client = client
        self._config = config
        self._refreshing: dict[str, asyncio.Task[dict[str, Any] | None]] = {}
        # Sessions re-issued while authenticating ({}: the session ended), to be written onto the
        # response. Keyed by the request's task, not kept in the request's state: a middleware
        # may hand the handler a clone (request.clone copies the state), and the response is
        # prepared with either; both share the task, and one connection's requests run in turn.
        self.pending: weakref.WeakKeyDictionary[asyncio.Task[None], dict[str, Any]]
        self.pending = weakref.WeakKeyDictionary()

    async def authenticate(self, request: web.Request) -> Identity | None:
        data = await self.cookies.read(request)
        if data is None:
            return None
        if data.get("rt") and self._client is not None and time.time() > data["iat"] + self.cookies.lifetime / 2:
            data = await self._refresh(request, data)
            if data is None:
                return None
        groups = data.get("groups") or ()
        return Identity(subject=data["sub"], method=self.name, email=data.get("email"), groups=tuple(groups))

    def challenge(self) -> str | None:
        return None  # browsers are redirected to sign in; there is no header to offer

    async def _refresh(self, request: web.Request, data: dict[str, Any]) -> dict[str, Any] | None:
        # Concurrent requests of one browser share one refresh: a rotating refresh token would
        # otherwise be spent by the first and refused for the rest.
        rt = data["rt"]
        task = self._refreshing.get(rt)
        if task is None:
            task = asyncio.ensure_future(self._refresh_at_provider(data))
            self._refreshing[rt] = task
            task.add_done_callback(lambda _: self._refreshing.pop(rt, None))
        refreshed = await asyncio.shield(task)
        self.pending[request.task] = refreshed if refreshed is not None else {}
        return refreshed

    async def _refresh_at_provider(self, data: dict[str, Any]) -> dict[str, Any] | None:
        assert self._client is not None
        try:
            tokens = await self._client.refresh(data["rt"])
            new = {**data, "rt": tokens.get("refresh_token", data["rt"]), "exp": None}
            if isinstance(tokens.get("id_token"), str):
                claims = await self._client.validate_id_token(tokens["id_token"], nonce=None)
                if claims["sub"] != data["sub"]:
                    raise SignOnRefused("the provider answered for another subject")
                claims = await allowlist.with_userinfo(claims, self._client, tokens.get("access_token"), self._config)
                new["email"], new["groups"] = allowlist.check(claims, self._config)
            return new
        except SignOnRefused as exc:
            # Revoked, or no longer on the allow-list: the session ends here.
            log.info("session of %s not refreshed, signing out: %s", data["sub"], exc)
            return None
        except ProviderError as exc:
            # The provider is unwell: keep the session (until its own expiry) without the
            # refresh token, rather than retrying on every request.
            log.warning("session of %s not refreshed, kept until it expires: %s", data["sub"], exc)
            return {k: v for k, v in data.items() if k != "rt"}


async def write_pending(
    authenticator: SessionAuthenticator, request: web.Request, response: web.StreamResponse
) -> None:
    """on_response_prepare: put a session re-issued for this request onto its response."""
    pending = authenticator.pending.pop(request.task, None)
    if pending is None:
        return
    if pending:
        await authenticator.cookies.write(request, response, pending)
    else:
        authenticator.cookies.clear(request, response)
