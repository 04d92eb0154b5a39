"""The browser-facing protections of `mlflow server` (3.5+), with its flags, defaults and answers:

- Host check (DNS rebinding): a page on evil.example whose name is re-pointed at 127.0.0.1
  reaches the server with `Host: evil.example`; only `allowed_hosts` are served (default: loopback
  names and private addresses, any port), health endpoints excepted, 403 otherwise;
- CORS: `cors_allowed_origins` (plus http://localhost, 127.0.0.1 and [::1] on any port) get
  credentialed CORS answers; a state-changing API call from any other Origin is refused 403
  (the browser would send it, cookies and all, and only hide the answer); `*` allows every
  origin without credentials and blocks none;
- X-Frame-Options (SAMEORIGIN by default; NONE sends none) and X-Content-Type-Options on every
  response, streamed ones included (so they are set as the response is prepared).
`disable_security_middleware` leaves all of it out.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.config import Config
from gateway.errors import mlflow_error

log = logging.getLogger("trackgate.security")

# mlflow.server.security_utils, word for word where a client or a test might compare.
INVALID_HOST_MSG = "Invalid Host header - possible DNS rebinding attack detected"
CORS_BLOCKED_MSG = "Cross-origin request blocked"
DISALLOWED_ORIGIN_MSG = "Disallowed CORS origin"
STATE_CHANGING = frozenset({"POST", "PUT", "DELETE", "PATCH"})
CORS_METHODS = "GET, POST, PUT, DELETE, OPTIONS, PATCH"
LOCALHOST_ORIGIN = re.compile(r"http://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]+)?")
LOCALHOST_NAMES = ("localhost", "127.0.0.1", "[::1]", "0.0.0.0")
# The notebook trace renderer is meant to be framed by Jupyter (mlflow.tracing.constant).
FRAMEABLE_PREFIX = "/static-files/lib/notebook-trace-renderer"
PREFLIGHT_MAX_AGE = "600"


def is_default_host(host: str) -> bool:
    """mlflow's default allow-list: the loopback names and private addresses, any port. Private
    addresses as IP literals only: mlflow's patterns ("10.*") also let a name such as
    10.attacker.example through, which is exactly what a rebinding attacker can register."""
    if host.startswith("["):
        name = host[: host.find("]") + 1]
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if name in LOCALHOST_NAMES:
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_private
    except ValueError:
        return False


def _matcher(patterns: tuple[str, ...]) -> Callable[[str], bool]:
    """Whether a value equals one of `patterns` or matches one with * (fnmatch's), compiled once."""
    exact = frozenset(p for p in patterns if "*" not in p)
    wild = tuple(re.compile(fnmatch.translate(p)).match for p in patterns if "*" in p)
    return lambda value: value in exact or any(match(value) for match in wild)


class Policy:
    """The decisions, from the config once."""

    def __init__(self, config: Config) -> None:
        self.default_hosts = not config.allowed_hosts
        self.check_host = "*" not in config.allowed_hosts
        self.host_listed = _matcher(config.allowed_hosts)
        self.origin_listed = _matcher(config.cors_allowed_origins)
        self.any_origin = "*" in config.cors_allowed_origins
        frame = config.x_frame_options.upper()
        self.frame_options = None if frame == "NONE" else frame
        prefix = config.static_prefix
        self.exempt = {"/healthz", "/readyz", f"{prefix}/health", f"{prefix}/version"}
        self.api_prefixes = (f"{prefix}/api/", f"{prefix}/ajax-api/", "/api/2.0/mlflow-artifacts/artifacts",
                             "/ajax-api/2.0/mlflow-artifacts/artifacts")
        self.frameable = f"{prefix}{FRAMEABLE_PREFIX}"

    def host_allowed(self, request: web.Request) -> bool:
        if not self.check_host or request.path in self.exempt:
            return True
        host = request.host
        return bool(host) and (is_default_host(host) if self.default_hosts else self.host_listed(host))

    def origin_allowed(self, origin: str) -> bool:
        """May `origin` read answers (credentialed CORS)?"""
        return bool(LOCALHOST_ORIGIN.fullmatch(origin)) or self.origin_listed(origin)

    def blocks(self, request: web.Request, origin: str) -> bool:
        """A state-changing API call from an origin that may not make it (mlflow's CORS blocking)."""
        if self.any_origin or not origin or request.method not in STATE_CHANGING:
            return False
        if not request.path.startswith(self.api_prefixes):
            return False
        if origin == f"{request.scheme}://{request.host}":
            # Same origin (the UI's own fetches send Origin too): not cross-origin at all. mlflow
            # blocks these unless the server's own URL is in cors_allowed_origins; the Host check
            # above already keeps a rebound name out.
            return False
        localhost = urlsplit(origin).hostname in ("localhost", "127.0.0.1", "::1") if "://" in origin else False
        return not localhost and not self.origin_listed(origin)


def build_security_middleware(config: Config) -> Middleware:
    """Host check, CORS preflights and cross-origin blocking. Before authentication: a preflight
    carries no credentials, and a request for a foreign Host is refused before anything else."""
    policy = Policy(config)

    @web.middleware
    async def security(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not policy.host_allowed(request):
            log.warning("refused a request for Host %.100r (not in allowed_hosts) from %s", request.host,
                        request.remote)
            return mlflow_error(403, "PERMISSION_DENIED", INVALID_HOST_MSG)
        origin = request.headers.get("Origin", "")
        if request.method == "OPTIONS" and origin and "Access-Control-Request-Method" in request.headers:
            return _preflight(policy, request, origin)
        if policy.blocks(request, origin):
            log.warning("blocked a cross-origin %s from %.100r", request.method, origin)
            return mlflow_error(403, "PERMISSION_DENIED", CORS_BLOCKED_MSG)
        return await handler(request)

    return security


def _preflight(policy: Policy, request: web.Request, origin: str) -> web.Response:
    requested = request.headers.get("Access-Control-Request-Headers", "")
    headers = {"Access-Control-Allow-Methods": CORS_METHODS, "Access-Control-Max-Age": PREFLIGHT_MAX_AGE}
    if requested:
        headers["Access-Control-Allow-Headers"] = requested
    if policy.any_origin:
        return web.Response(text="OK", headers={**headers, "Access-Control-Allow-Origin": "*"})
    if not policy.origin_allowed(origin):
        return mlflow_error(400, "BAD_REQUEST", DISALLOWED_ORIGIN_MSG, {"Vary": "Origin"})
    return web.Response(text="OK", headers={
        **headers, "Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true", "Vary": "Origin",
    })


def build_response_headers(config: Config) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """An on_response_prepare hook: security and CORS headers on every response, streamed or not."""
    policy = Policy(config)

    async def response_headers(request: web.Request, response: web.StreamResponse) -> None:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if policy.frame_options and not request.path.startswith(policy.frameable):
            response.headers.setdefault("X-Frame-Options", policy.frame_options)
        origin = request.headers.get("Origin")
        if not origin or "Access-Control-Allow-Origin" in response.headers:
            return
        if policy.any_origin:
            response.headers["Access-Control-Allow-Origin"] = "*"
            response.headers["Access-Control-Expose-Headers"] = "*"
        elif policy.origin_allowed(origin):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Access-Control-Expose-Headers"] = "*"
            response.headers.add("Vary", "Origin")

    return response_headers
