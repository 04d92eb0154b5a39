"""The gateway application: its own health endpoints, the middleware stack, the proxy for the rest."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable, Sequence

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

import gateway
from gateway import keys, metrics, proxy, routes
from gateway.access_log import build_request_log_middleware
from gateway.auth import methods as auth_methods
from gateway.auth.middleware import build_auth_middleware
from gateway.config import Config
from gateway.drain import Drain
from gateway.errors import mlflow_error
from gateway.forwarded import TrustedProxies, build_forwarded_middleware
from gateway.security import build_response_headers, build_security_middleware
from gateway.supervisor import PrepareSchema, supervisor_context
from gateway.tls import TlsContext
from tracking_core.contract import READY_PATH

log = logging.getLogger("trackgate.gateway")

# A client's X-Request-Id is kept only if it is short and plain, so it is safe in logs and headers.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")

# (status, error_code) for failures the gateway itself answers, in MLflow's error shape.
_ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "ENDPOINT_NOT_FOUND",
    413: "RESOURCE_EXHAUSTED",
    429: "RESOURCE_EXHAUSTED",
    503: "TEMPORARILY_UNAVAILABLE",
}


def build_gateway_app(
    config: Config,
    *,
    core_command: Sequence[str] | None = None,
    prepare_schema: PrepareSchema | None = None,
    core_watch: Callable[[web.Application], AsyncIterator[None]] | None = None,
) -> web.Application:
    """The public application. `core_command` / `prepare_schema` replace the real tracking-core
    worker and schema bootstrap (the gateway's own tests use a stand-in worker). `core_watch`
    (in an extra gateway process, gateway.gateway_worker) replaces the supervisor: that process
    watches the core the primary runs, and leaves the metrics listener to the primary."""
    primary = core_watch is None
    drain = Drain()
    app = web.Application(middlewares=build_middlewares(drain, config))
    app[keys.config] = config
    app[keys.drain] = drain
    if config.tls_cert:
        app[keys.tls] = TlsContext(config)  # loaded now: a bad certificate stops startup at once
    # Order matters: the supervisor's context brings the core up (and, on cleanup, stops it
    # last); the proxy session opens on the socket the supervisor bound and closes first.
    app.cleanup_ctx.append(routes.building_context)  # first: it overlaps the core's start-up
    app.cleanup_ctx.append(supervisor_context(core_command, prepare_schema) if primary else core_watch)
    app.cleanup_ctx.append(proxy.core_session_context)
    metrics.install(app, listener=primary)  # its own listener, once the core is up (when configured)
    app.on_response_prepare.append(_stamp_response)
    if not config.disable_security_middleware:
        app.on_response_prepare.append(build_response_headers(config))
    app.on_response_prepare.append(drain.on_response_prepare)
    app.router.add_get("/healthz", healthz, allow_head=True)
    app.router.add_get("/readyz", readyz, allow_head=True)
    # Before the catch-all: the methods' own routes (/.well-known/jwks.json, /oauth2/*); their
    # contexts open after the core and the proxy session.
    auth_methods.install(app)
    app.router.add_route("*", "/{tail:.*}", proxy.proxy_handler)
    app.on_startup.append(routes.remember)  # the request log's route names, once every route is added
    return app


def build_middlewares(drain: Drain, config: Config) -> list[Middleware]:
    """The middleware stack, outermost first. Why this order:

    0. drain tracking outermost: a SIGTERM waits for every request the gateway is handling,
       whatever the layers below do with it.
    1. request ids next: every layer below, every log line and every response (including the
       error responses the layers below produce) can carry the id.
    2. errors next: whatever goes wrong below (a bug, an auth failure) is answered in MLflow's
       JSON error shape with the request id, never as a traceback or aiohttp's text/plain page.
    3. forwarding next (only with trusted_proxies): a trusted reverse proxy's X-Forwarded-* become the request's remote,
       scheme and host before anything (authentication, its logs, cookies' Secure flag,
       redirects) looks at them; from anyone else they are ignored.
    4. browser security next (unless disable_security_middleware): the Host check, CORS preflights
       and cross-origin blocking of mlflow server; after forwarding so the Host a trusted proxy
       received is checked, before authentication because a preflight carries no credentials.
    5. authentication last (only with auth methods): inside the error handler so a 401 is rendered in the same shape;
       before the proxy so only authenticated requests reach the core, and the identity
       headers the core trusts are set from the authenticated identity alone (the proxy
       already drops every client-sent one).
    The proxy itself is the handler, not a middleware: /healthz and /readyz are routes next to it.
    A layer with nothing to do (no trusted proxy, an open server) is left out, not run per request.
    """
    middlewares: list[Middleware] = [drain.middleware, request_id_middleware, error_middleware]
    if config.trusted_proxies:
        middlewares.append(build_forwarded_middleware(TrustedProxies(config.trusted_proxies)))
    # The request log (and metrics): after forwarding, so it records the client's address; around
    # authentication, so it records who called and how, and every refusal.
    middlewares.append(build_request_log_middleware(config))
    if not config.disable_security_middleware:
        middlewares.append(build_security_middleware(config))
    if config.auth:  # the same condition as auth_methods.install(), which opens the chain it uses
        middlewares.append(build_auth_middleware(config))
    return middlewares


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    supplied = request.headers.get("X-Request-Id", "")
    request[keys.request_id] = supplied if _REQUEST_ID.fullmatch(supplied) else uuid.uuid4().hex
    return await handler(request)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _ERROR_CODES.get(exc.status, "INTERNAL_ERROR" if exc.status >= 500 else "BAD_REQUEST")
        return mlflow_error(exc.status, code, exc.reason, headers=exc.headers)
    except Exception:
        log.exception("request %s failed: %s %s", request[keys.request_id], request.method, request.path)
        return mlflow_error(
            500, "INTERNAL_ERROR", f"Internal error (request id {request[keys.request_id]})."
        )


async def _stamp_response(request: web.Request, response: web.StreamResponse) -> None:
    # on_response_prepare reaches streamed responses too, whose headers leave before a
    # middleware could see them.
    response.headers["X-Trackgate-Version"] = gateway.__version__
    if (request_id := request.get(keys.request_id)) is not None:
        response.headers["X-Request-Id"] = request_id


async def healthz(request: web.Request) -> web.Response:
    """The gateway process is alive (says nothing about the core: that is /readyz)."""
    return web.Response(text="OK")


async def readyz(request: web.Request) -> web.Response:
    """Ready only while the core is up and answers that its database is reachable."""
    core = request.app[keys.core]
    if not core.available:
        return _readiness(503, "the tracking core is not available")
    probe = await core.probe(READY_PATH)
    if probe.ok:
        return _readiness(200, None)
    detail = f"the tracking core answered HTTP {probe.status}" if probe.status else probe.body
    return _readiness(503, detail)


def _readiness(status: int, detail: str | None) -> web.Response:
    body = {"status": "ok"} if detail is None else {"status": "unavailable", "detail": detail}
    headers = {"Retry-After": "1"} if status == 503 else None
    return web.Response(
        status=status, text=json.dumps(body), content_type="application/json", headers=headers
    )
