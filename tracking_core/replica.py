"""--read-replica-backend-store-uri: searches read from a read-only replica of the tracking database.

Which reads may go there is decided per request: the search endpoints (experiments, runs,
registered models, model versions, logged models, datasets: the last path segment starts with
"search"), which scan many rows and tolerate the replica's lag of a moment. Everything else (writes,
and reads by id such as runs/get or metrics/get-history, which a client issues right after its own
write) stays on the primary, so a client always reads what it has just written. There is no
failover: a replica that is down fails searches with 503 (the client retries), as in mlflow server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Middleware

from tracking_core.settings import CoreSettings
from tracking_core.store.database import create_engine, replica_reads

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


def open_engine(config: CoreSettings) -> AsyncEngine | None:
    uri = config.read_replica_backend_store_uri
    return create_engine(config, uri) if uri else None


def is_search(path: str) -> bool:
    return path.rstrip("/").rsplit("/", 1)[-1].startswith("search")


@web.middleware
async def searches_on_replica(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if not is_search(request.path):
        return await handler(request)
    token = replica_reads.set(True)
    try:
        return await handler(request)
    finally:
        replica_reads.reset(token)


def middlewares(config: CoreSettings) -> list[Middleware]:
    """The marking middleware, only when a replica is configured."""
    return [searches_on_replica] if config.read_replica_backend_store_uri else []
