"""Every typed key of the gateway's application and request state, in one place.

Keeping them together makes the gateway's shared state readable at a glance and lets mypy
check every `app[key]` / `request[key]` access (aiohttp's `AppKey` / `RequestKey`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from gateway.auth.base import Consumed, Identity
from gateway.config import Config

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from gateway.auth.methods import AuthChain
    from gateway.auth.oidc import SSO
    from gateway.core_link import CoreLink
    from gateway.core_watch import CoreView
    from gateway.drain import Drain
    from gateway.gateway_pool import GatewayPool
    from gateway.metrics import Metrics
    from gateway.routes import RouteNames
    from gateway.supervisor import Supervisor
    from gateway.tls import TlsContext

# The validated, frozen configuration the gateway was built with.
config = web.AppKey("config", Config)

# The core worker processes and their private socket (the primary gateway process only).
supervisor: web.AppKey[Supervisor] = web.AppKey("supervisor")

# Whether the core may be reached now, and how (the supervisor itself in the primary gateway
# process; a CoreWatch told the live worker count by the primary in an extra gateway process).
core: web.AppKey[CoreView] = web.AppKey("core")

# The extra gateway processes sharing the public port (primary process only, with gateway_workers > 1).
gateway_pool: web.AppKey[GatewayPool] = web.AppKey("gateway_pool")

# In-flight request tracking for the SIGTERM drain.
drain: web.AppKey[Drain] = web.AppKey("drain")

# Prometheus metrics (absent unless --metrics-address / --expose-prometheus): fed by the request log.
metrics: web.AppKey[Metrics] = web.AppKey("metrics")

# Route templates for the request log and metrics (gateway.routes), set at startup.
route_names: web.AppKey[RouteNames] = web.AppKey("route_names")
route_names_building: web.AppKey[asyncio.Future[RouteNames]] = web.AppKey("route_names_building")

# The one keep-alive HTTP session over the private Unix socket that the proxy forwards through.
core_session = web.AppKey("core_session", aiohttp.ClientSession)

# The framed link to the core workers, or None when the proxy forwards over HTTP (core_session).
core_link: web.AppKey[CoreLink | None] = web.AppKey("core_link")

# The request id of this request (accepted from X-Request-Id or generated), forwarded to the core
# and echoed on the response so a client's report can be matched with both processes' logs.
request_id = web.RequestKey("request_id", str)

# The enabled authenticators, in `--auth` order (absent when authentication is off).
auth_chain: web.AppKey[AuthChain] = web.AppKey("auth_chain")

# The gateway's own small engine on the tracking database (users, tokens, signing keys); opened
# only when an enabled method needs it.
auth_engine: web.AppKey[AsyncEngine] = web.AppKey("auth_engine")

# The server's TLS context holder (absent without --tls-cert); SIGHUP swaps its certificate.
tls: web.AppKey[TlsContext] = web.AppKey("tls")

# Who is calling, once a method accepted the request (absent on skip-auth routes / open servers).
identity = web.RequestKey("identity", Identity)

# Body bytes a streamed proxy response has sent so far: aiohttp knows a streamed response's size
# only after write_eof, which runs after every middleware, so the request log reads this instead.
bytes_streamed = web.RequestKey("bytes_streamed", int)

# Where the accepted credential was carried (stripped before forwarding).
consumed = web.RequestKey("consumed", Consumed)

# OIDC sign-on: the provider client and session authenticator the /oauth2/* routes use.
sso: web.AppKey[SSO] = web.AppKey("sso")
