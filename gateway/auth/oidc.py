"""OIDC single sign-on (`--auth oidc`): the /oauth2/* routes and the method's registration.

The flow is oauth2-proxy's: /oauth2/start?rd=<path> sends the browser to the provider with a
fresh `state`, `nonce` and PKCE (S256) challenge, remembered in a short-lived encrypted cookie of
this browser; /oauth2/callback checks them, trades the code for tokens, validates the ID token,
applies the allow-lists, issues the session cookie and sends the browser on to `rd`. Refusals are
pages a person can read (400: start again, 403: not allowed, 502: the provider failed).
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import html
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import keys
from gateway.auth import allowlist
from gateway.auth.base import Method
from gateway.auth.oidc_client import OIDCClient, ProviderError, SignOnRefused
from gateway.auth.redirects import safe_redirect
from gateway.auth.session import (
    CookieTooLarge,
    SessionAuthenticator,
    SessionCookies,
    write_pending,
)
from gateway.auth.stored_secrets import get_or_create
from gateway.config import Config, decode_cookie_secret
from gateway.errors import mlflow_error

log = logging.getLogger("trackgate.auth.oidc")

START_PATH = "/oauth2/start"
CALLBACK_PATH = "/oauth2/callback"
COOKIE_SECRET_NAME = "session_cookie_secret"


@dataclass
class SSO:
    """What the /oauth2/* handlers use; filled in when the method is opened at startup."""

    config: Config
    client: OIDCClient | None = None
    authenticator: SessionAuthenticator | None = None

    def ready(self) -> tuple[OIDCClient, SessionAuthenticator]:
        if self.client is None or self.authenticator is None:
            raise web.HTTPServiceUnavailable(reason="Sign-on is starting; retry shortly.")
        return self.client, self.authenticator


async def cookie_secret(config: Config, engine: AsyncEngine | None) -> bytes:
    """The configured cookie secret, else the one generated once and kept in the database."""
    if config.cookie_secret is not None:
        return decode_cookie_secret(config.cookie_secret.reveal())

    def generate() -> str:
        return base64.b64encode(secrets.token_bytes(32)).decode()

    return decode_cookie_secret(await get_or_create(engine, COOKIE_SECRET_NAME, generate))


@contextlib.asynccontextmanager
async def open_sso(app: web.Application) -> AsyncIterator[SessionAuthenticator]:
    """Startup: the cookie secret, the provider client, the authenticator; closed at shutdown."""
    sso = app[keys.sso]
    https = (sso.config.oidc_redirect_url or "").startswith("https://")
    cookies = SessionCookies(
        await cookie_secret(sso.config, app.get(keys.auth_engine)),  # None with artifacts_only
        sso.config.session_lifetime,
        always_secure=https,
        login_path=sso.config.static_prefix + "/oauth2/",
    )
    async with OIDCClient(sso.config) as client:
        sso.client, sso.authenticator = client, SessionAuthenticator(cookies, client, sso.config)
        try:
            await client.metadata()  # a wrong issuer shows in the startup log, not at first sign-in
        except ProviderError as exc:
            log.warning("OIDC discovery failed (retried at sign-in): %s", exc)
        yield sso.authenticator
        sso.client = sso.authenticator = None


def add_routes(app: web.Application) -> None:
    app[keys.sso] = SSO(app[keys.config])
    prefix = app[keys.config].static_prefix  # like every other route (and the login redirect)
    app.router.add_get(prefix + START_PATH, start)
    app.router.add_get(prefix + CALLBACK_PATH, callback)
    app.router.add_route("GET", prefix + "/oauth2/sign_out", sign_out)
    app.router.add_route("POST", prefix + "/oauth2/sign_out", sign_out)
    app.router.add_get(prefix + "/oauth2/userinfo", userinfo)

    async def on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
        authenticator = app[keys.sso].authenticator
        if authenticator is not None:
            await write_pending(authenticator, request, response)

    app.on_response_prepare.append(on_response_prepare)


METHOD = Method(name="oidc", open=open_sso, add_routes=add_routes, login_path=START_PATH)


# -- handlers ---------------------------------------------------------------------------------------


async def start(request: web.Request) -> web.StreamResponse:
    """Send the browser to the provider; `rd` is where it lands afterwards (a local path)."""
    client, authenticator = request.app[keys.sso].ready()
    rd = safe_redirect(request.query.get("rd"))
    state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
    redirect_uri = callback_url(request)
    try:
        url = await client.authorization_url(redirect_uri, state, nonce, verifier)
    except ProviderError as exc:
        log.warning("sign-in could not start: %s", exc)
        return page(502, "Sign-in is unavailable", "The identity provider cannot be reached. Try again.")
    response = web.Response(status=302, headers={"Location": url, "Cache-Control": "no-store"})
    authenticator.cookies.begin_login(
        request, response, state, nonce=nonce, verifier=verifier, rd=rd, redirect_uri=redirect_uri
    )
    return response


async def callback(request: web.Request) -> web.StreamResponse:
    """The provider sends the browser back here with a code (or an error)."""
    sso = request.app[keys.sso]
    client, authenticator = sso.ready()
    query = request.query
    if "error" in query:
        # e.g. access_denied when the user cancels at the provider. Its text is shown escaped.
        detail = query.get("error_description") or query["error"]
        return page(403, "Sign-in was not completed", f"The identity provider said: {detail}", again=True)
    state, code = query.get("state", ""), query.get("code", "")
    response = web.Response(status=302, headers={"Cache-Control": "no-store"})
    login = authenticator.cookies.take_login(request, response, state) if state else None
    if login is None or not code or not hmac.compare_digest(login.get("state", ""), state):
        # No matching sign-in in this browser: forged, replayed, or older than its 10 minutes.
        return page(400, "Sign-in expired", "This sign-in was not started here or took too long.", again=True)
    subject = "unknown"
    try:
        meta = await client.metadata()
        # RFC 9207: a provider that names itself in the response must be the one we asked.
        if "iss" in query and query["iss"] != meta["issuer"]:
            raise SignOnRefused("The sign-in response came from another identity provider.")
        tokens = await client.exchange_code(code, login["redirect_uri"], login["verifier"])
        if not isinstance(tokens.get("id_token"), str):
            raise ProviderError("the token response has no id_token (is the openid scope granted?)")
        claims = await client.validate_id_token(tokens["id_token"], login["nonce"])
        subject = str(claims["sub"])
        claims = await allowlist.with_userinfo(claims, client, tokens.get("access_token"), sso.config)
        email, groups = allowlist.check(claims, sso.config)
        refresh_token = tokens.get("refresh_token")
        data = {"sub": subject, "email": email, "groups": groups, "rt": refresh_token}
        await authenticator.cookies.write(request, response, data)
    except SignOnRefused as exc:
        log.warning("sign-in refused (subject %s): %s", subject, exc)
        return page(403, "Sign-in refused", str(exc), again=True)
    except ProviderError as exc:
        log.warning("sign-in failed at the provider: %s", exc)
        return page(502, "Sign-in failed", "The identity provider did not answer as expected. Try again.")
    except CookieTooLarge:
        return page(403, "Sign-in refused", "Your account's details are too large for a session.")
    log.info("signed in: %s (%s)", subject, email)
    response.headers["Location"] = safe_redirect(login.get("rd"))
    return response


async def sign_out(request: web.Request) -> web.StreamResponse:
    """Forget the session, then go to `rd` (a local path) or show a signed-out page. With
    oidc_end_session the provider's session ends too; otherwise the next sign-in may pass the
    provider without a password (its own session is still there), which is why the default is
    a page rather than "/", which would sign the browser straight back in."""
    sso = request.app[keys.sso]
    rd = safe_redirect(request.query.get("rd")) if "rd" in request.query else None
    location = rd
    if sso.config.oidc_end_session and sso.client is not None:
        with contextlib.suppress(ProviderError):
            location = await sso.client.end_session_url(public_origin(request) + (rd or "/")) or rd
    if location is None:
        response = page(200, "Signed out", "You are signed out of this server.", again=True)
    else:
        response = web.Response(status=302, headers={"Location": location, "Cache-Control": "no-store"})
    if sso.authenticator is not None:
        sso.authenticator.cookies.clear(request, response)
    return response


async def userinfo(request: web.Request) -> web.Response:
    """The signed-in identity: JSON (oauth2-proxy's /oauth2/userinfo), or for a browser page load
    a small page saying who is signed in; 401 when nobody is."""
    _, authenticator = request.app[keys.sso].ready()
    identity = request.get(keys.identity) or await authenticator.authenticate(request)
    wants_page = "text/html" in request.headers.get("Accept", "")
    if identity is None:
        if wants_page:
            return page(401, "Not signed in", "You are not signed in to this server.", again=True)
        return mlflow_error(401, "UNAUTHENTICATED", "Not signed in.")
    body: dict[str, object] = {
        "user": identity.subject,
        "email": identity.email,
        "groups": list(identity.groups),
        "method": identity.method,
    }
    if wants_page:
        who = identity.email or identity.subject
        groups = ", ".join(identity.groups) or "none"
        return page(200, f"Signed in as {who}", f"Subject {identity.subject}; groups: {groups}.", sign_out=True)
    return web.json_response(body, headers={"Cache-Control": "no-store"})


# -- helpers ----------------------------------------------------------------------------------------


def public_origin(request: web.Request) -> str:
    """scheme://host the browser uses: that of oidc_redirect_url when set (the public URL),
    else as the request came (as trusted proxies say, when configured)."""
    configured = request.app[keys.config].oidc_redirect_url
    if configured:
        parts = urlsplit(configured)
        return f"{parts.scheme}://{parts.netloc}"
    return f"{request.scheme}://{request.host}"


def callback_url(request: web.Request) -> str:
    """oidc_redirect_url, else derived from the request (it must be registered at the provider,
    so a forged Host header only gets the provider's own refusal)."""
    configured = request.app[keys.config].oidc_redirect_url
    return configured or public_origin(request) + request.app[keys.config].static_prefix + CALLBACK_PATH


def page(status: int, title: str, message: str, *, again: bool = False, sign_out: bool = False) -> web.Response:
    """A small HTML page for a person in a browser; every text escaped."""
    # Relative links: every page is served under <static prefix>/oauth2/.
    link = '<p><a href="start">Sign in again</a></p>' if again else ""
    if sign_out:
        link = '<p><a href="sign_out">Sign out</a></p>'
    text = (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        f"<title>{html.escape(title)} · trackgate</title>"
        "<body style='font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem'>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>{link}</body></html>"
    )
    headers = {"Cache-Control": "no-store"}
    return web.Response(status=status, text=text, content_type="text/html", headers=headers)
