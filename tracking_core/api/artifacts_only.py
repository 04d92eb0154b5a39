"""`--artifacts-only`: the tracking routes stay mounted but answer MLflow's 503 for that mode.

An artifacts-only instance runs no database; a client that reaches it with a tracking call
gets the same answer `mlflow server --artifacts-only` gives (reference §8), naming the route,
instead of a 404 that would look like a wrong URL. Tracking routes this table does not know
(added later, or misspelt) are caught by one pattern per API root and answered the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

from tracking_core.api.routing import Endpoint

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _message(rule: str) -> str:
    return (
        f"Endpoint: {rule} disabled due to the mlflow server running in `--artifacts-only` mode. "
        "To enable tracking server functionality, run `mlflow server` without `--artifacts-only`"
    )


def disabled(rule: str | None = None) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=503, text=_message(rule or request.path), content_type="text/html")

    return handler


def add_routes(
    app: web.Application, prefix: str, endpoints: Iterable[Endpoint], extra_paths: Iterable[str]
) -> None:
    for endpoint in endpoints:
        for method, rule in endpoint.rules():
            app.router.add_route(method, prefix + rule, disabled(rule))
    for path in extra_paths:
        app.router.add_route("*", prefix + path, disabled(path))
    # Registered last: the exact routes above and server-info (mounted earlier) win over these.
    for root in ("api", "ajax-api"):
        app.router.add_route("*", f"{prefix}/{root}/{{version}}/mlflow/{{tail:.+}}", disabled())
