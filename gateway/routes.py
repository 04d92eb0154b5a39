"""A request's route name for logs and metrics: the route template, never the raw path.

`/api/2.0/mlflow-artifacts/artifacts/1/abc/model.pkl` is logged and counted as
`/api/2.0/mlflow-artifacts/artifacts/{artifact_path}`, so ids and file names neither fill a
metrics database with label values nor reach the logs. The templates are the tracking core's own
routes (its application is built, not started, to read them) and the gateway's; a path that is
neither is `unmatched`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Iterable

from aiohttp import web

from gateway import keys

UNMATCHED = "unmatched"


class RouteNames:
    def __init__(self, routers: Iterable[web.UrlDispatcher]) -> None:
        self._plain: set[str] = set()
        self._dynamic: list[tuple[re.Pattern[str], str]] = []
        self._prefixes: list[tuple[str, str]] = []
        for router in routers:
            for resource in router.resources():
                info = resource.get_info()
                if "path" in info:
                    self._plain.add(info["path"])
                elif "pattern" in info and resource.canonical != "/{tail}":  # the gateway's catch-all proxy
                    self._dynamic.append((info["pattern"], resource.canonical))
                elif "prefix" in info:  # static files
                    self._prefixes.append((info["prefix"].rstrip("/") + "/", resource.canonical + "/{filename}"))

    def name(self, path: str) -> str:
        if path in self._plain:
            return path
        for pattern, canonical in self._dynamic:
            if pattern.fullmatch(path):
                return canonical
        for prefix, canonical in self._prefixes:
            if path.startswith(prefix):
                return canonical
        return UNMATCHED


def for_gateway(app: web.Application) -> RouteNames:
    """The route names of the gateway `app` and of the tracking core behind it."""
    from tracking_core.app import build_app  # lazy: only the route table is wanted

    core = build_app(app[keys.config].core_settings())
    return RouteNames([core.router, app.router])


async def building_context(app: web.Application) -> AsyncIterator[None]:
    """A cleanup_ctx, first of all: the route names are built in a thread while the core starts.

    Reading the core's routes imports its whole application (~0.15 s of CPU). `remember` runs after
    the core is ready and before the public port opens, so doing the work there put it on the
    start-up's critical path; here it overlaps the wait for the workers, which import in their
    own processes."""
    building = asyncio.ensure_future(asyncio.to_thread(for_gateway, app))
    app[keys.route_names_building] = building
    try:
        yield
    finally:
        if not building.done():
            building.cancel()  # start-up failed first; the thread itself finishes on its own
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await building


async def remember(app: web.Application) -> None:
    """An on_startup hook of the gateway `app`, after the core is up: the route names, built once
    (every route is added by then) rather than by the first request."""
    app[keys.route_names] = await app[keys.route_names_building]
