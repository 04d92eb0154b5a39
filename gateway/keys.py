"""Every typed key of the gateway's application and request state, in one place.

Keeping them together makes the gateway's shared state readable at a glance and lets mypy
check every `app[key]` / `request[key]` access (aiohttp's `AppKey` / `RequestKey`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from gateway.config import Config

if TYPE_CHECKING:
    from gateway.drain import Drain
    from gateway.supervisor import Supervisor

# The validated, frozen configuration the gateway was built with.
config = web.AppKey("config", Config)

# The core worker processes, their private socket and the "core available" flag.
supervisor: web.AppKey[Supervisor] = web.AppKey("supervisor")

# In-flight request tracking for the SIGTERM drain.
drain: web.AppKey[Drain] = web.AppKey("drain")

# The one keep-alive HTTP session over the private Unix socket that the proxy forwards through.
core_session = web.AppKey("core_session", aiohttp.ClientSession)

# The request id of this request (accepted from X-Request-Id or generated), forwarded to the core
# and echoed on the response so a client's report can be matched with both processes' logs.
request_id = web.RequestKey("request_id", str)
