"""The authentication middleware: the enabled methods in order, first acceptance wins.

Outcomes, as an API client and a browser each need them:
- a method accepts: the identity is kept on the request and the proxy sends it to the core;
- a method raises AuthenticationFailed (its kind of credential, not valid): 401 at once, no
  fallback to other methods or to anonymous;
- nobody accepts: a top-level browser navigation is redirected to sign in (when a method offers
  interactive login); everything else gets 401 in MLflow's JSON error shape with
  WWW-Authenticate. Never a redirect for an API call: the mlflow client follows redirects, turns
  the POST into a GET and then fails on the HTML login page as if the server were broken.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from multidict import CIMultiDict

from gateway import keys
from gateway.auth import audit
from gateway.auth.base import AuthenticationFailed
from gateway.auth.paths import SkipAuth, normalise
from gateway.auth.throttle import FailureThrottle, TooManyAttempts, claimed_user
from gateway.config import Config
from gateway.errors import mlflow_error

log = logging.getLogger("trackgate.auth")

FALLBACK_CHALLENGE = 'Bearer realm="trackgate"'


def unauthenticated(message: str, challenges: list[str]) -> web.Response:
    headers: CIMultiDict[str] = CIMultiDict()
    for challenge in challenges or [FALLBACK_CHALLENGE]:
        headers.add("WWW-Authenticate", challenge)
    return mlflow_error(401, "UNAUTHENTICATED", message, headers)


def is_browser_navigation(request: web.Request, path: str) -> bool:
    """A top-level page load by a browser, which can follow a redirect to a login page."""
    if request.method != "GET" or "Authorization" in request.headers:
        return False
    if path.startswith(("/api/", "/ajax-api/")):
        return False
    if request.headers.get("Sec-Fetch-Dest", "document") != "document":
        return False
    return "text/html" in request.headers.get("Accept", "")


def build_auth_middleware(config: Config) -> Middleware:
    skip = SkipAuth(config.skip_auth_routes, config.static_prefix)
    prefix = config.static_prefix
    throttle = FailureThrottle(config.gateway_processes)  # this process's share of the limits

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        chain = request.app.get(keys.auth_chain)
        if chain is None or skip.exempt(request.raw_path):
            return await handler(request)
        address = request.remote or ""
        authorization = request.headers.get("Authorization")
        user = claimed_user(authorization or "")
        identity = None
        try:
            # Checked and reserved with no await in between, so a parallel burst is counted whole.
            wait = throttle.retry_after(address, user) if authorization is not None else None
            if wait is not None and not chain.known_good(request):  # one accepted before keeps working
                raise TooManyAttempts(wait)
            with throttle.attempt(address, user, in_flight=authorization is not None) as attempt:
                for authenticator in chain.authenticators:
                    try:
                        identity = await authenticator.authenticate(request)
                    except AuthenticationFailed as exc:
                        log.info(
                            "request %s: %s authentication refused: %s (from %s)",
                            request.get(keys.request_id), authenticator.name, exc.message, request.remote,
                        )
                        attempt.failed()
                        await audit.refused(request, authenticator.name, user, exc.message)
                        challenge = exc.challenge or authenticator.challenge()
                        return unauthenticated(exc.message, [challenge] if challenge else [])
                    if identity is not None:
                        break
        except TooManyAttempts as exc:
            return mlflow_error(429, "RESOURCE_EXHAUSTED", str(exc), {"Retry-After": str(int(exc.retry_after) + 1)})
        if identity is not None:
            request[keys.identity] = identity
            request[keys.consumed] = authenticator.consumed
            return await handler(request)
        try:
            path = normalise(request.raw_path, prefix)
        except UnicodeDecodeError:
            path = request.path
        if chain.login_path and is_browser_navigation(request, path):
            target = quote(request.raw_path if request.raw_path.startswith("/") else "/", safe="")
            # A plain Location header: web.HTTPFound would re-parse the URL and decode `rd`.
            location = f"{prefix}{chain.login_path}?rd={target}"
            return web.Response(status=302, headers={"Location": location, "Cache-Control": "no-store"})
        challenges = chain.challenges()
        if chain.login_path and path.startswith("/ajax-api/"):
            # The web UI's own calls: a Basic challenge would pop up the browser's password
            # dialog over a page whose user signs in with SSO.
            challenges = [c for c in challenges if not c.lower().startswith("basic")]
        return unauthenticated("Authentication required: " + _how(chain.authenticators), challenges)

    return authenticate


def _how(authenticators: tuple[object, ...]) -> str:
    names = {
        "basic": "HTTP basic (MLFLOW_TRACKING_USERNAME/PASSWORD)",
        "bearer": "a bearer token (MLFLOW_TRACKING_TOKEN)",
        "mtls": "a client certificate (MLFLOW_TRACKING_CLIENT_CERT_PATH)",
        "oidc": "signing in at /oauth2/start",
    }
    methods = [names.get(getattr(a, "name", ""), getattr(a, "name", "?")) for a in authenticators]
    return "use " + " or ".join(methods) + "."
