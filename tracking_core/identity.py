"""Who is calling, as the gateway established it: read once per request, typed, for handlers.

The core listens only on the gateway's private socket, and the gateway removes every
client-sent identity header before adding its own, so these headers are the gateway's word.
No identity (an open server, a skip-auth route): `caller(request)` is None and handlers keep
what the client said (e.g. a run's user_id), as `mlflow server` does.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from tracking_core.contract import SUBJECT_HEADER, Identity, parse_identity
from tracking_core.keys import IDENTITY


def identify(request: web.Request) -> Identity | None:
    """Read the caller from the gateway's headers into the request (authorization's middleware,
    which takes this one's place when it is installed, calls it too)."""
    if SUBJECT_HEADER in request.headers and (found := parse_identity(request.headers)) is not None:
        request[IDENTITY] = found
        return found
    return None


@web.middleware
async def identity(request: web.Request, handler: Handler) -> web.StreamResponse:
    identify(request)
    return await handler(request)


def caller(request: web.Request) -> Identity | None:
    return request.get(IDENTITY)
