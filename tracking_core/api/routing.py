"""Endpoints declared as data, and the one adapter that runs them.

An `Endpoint` names its path, methods, request fields and handler. `add_endpoints` mounts each
under `/api/<version>/mlflow/` and the `/ajax-api/` mirror the web UI uses, behind the static
prefix. The adapter checks the JSON Content-Type rule, parses the request with `wire`, calls the
handler with plain values and serialises the dict it returns.
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from multidict import MultiDict

from tracking_core.api import wire
from tracking_core.errors import invalid
from tracking_core.keys import CONFIG

Handler = Callable[[web.Request, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Endpoint:
    path: str
    methods: tuple[str, ...]
    handler: Handler
    request: tuple[wire.Field, ...] = ()
    version: str = "2.0"
    service: str = "mlflow"
    # Routes the MLflow server serves only under /ajax-api (UI helpers).
    ajax_only: bool = False

    def rules(self) -> list[tuple[str, str]]:
        """(method, path) pairs under /api and its /ajax-api mirror, before the static prefix."""
        roots = ["ajax-api"] if self.ajax_only else ["api", "ajax-api"]
        paths = [f"/{root}/{self.version}/{self.service}/{self.path}" for root in roots]
        return [(method, path) for path in paths for method in self.methods]


# Runs an endpoint in place of calling its handler directly: authorization installs one
# (tracking_core.authz.guard) that checks the caller against the endpoint's rule first.
Guard = Callable[[web.Request, "Endpoint", dict[str, Any]], Awaitable[dict[str, Any]]]
GUARD = web.AppKey("endpoint_guard", Guard)

_JSON_METHODS = ("POST", "PUT")


def json_response(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json")


async def read_json_body(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, under MLflow's Content-Type rule for POST and PUT."""
    if request.method in _JSON_METHODS:
        content_type = request.headers.get("Content-Type")
        if content_type is None:
            raise invalid("Bad Request. Content-Type header is missing.")
        if request.content_type != "application/json":
            raise invalid("Bad Request. Content-Type must be one of ['application/json'].")
    raw = _decoded(request, await request.read())
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
        if isinstance(data, str):  # legacy clients double-encode the body
            data = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise invalid(f"Request body is not valid JSON: {exc.msg}.") from None
    if not isinstance(data, dict):
        raise invalid("Request body must be a JSON object.")
    return data


_DECODERS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def _decoded(request: web.Request, raw: bytes) -> bytes:
    """The body with its Content-Encoding undone, no larger than the server's body limit.

    The worker runs aiohttp with auto_decompress off (tracking_core.worker), so this is the one
    place a request body is decoded."""
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in _DECODERS:
        raise invalid(f"Unsupported Content-Encoding '{encoding[:40]}'; send gzip, deflate or none.")
    decoder = zlib.decompressobj(_DECODERS[encoding])
    try:
        body = decoder.decompress(raw, request.app[CONFIG].max_body_mb * 1024 * 1024)
    except zlib.error:
        raise invalid(f"Request body is not valid {encoding} data.") from None
    if decoder.unconsumed_tail or not decoder.eof:
        raise invalid(f"Request body is not complete {encoding} data, or decodes to more than the body limit.")
    return body


def _adapter(endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        if request.method == "GET":
            query = MultiDict(request.query)
            query.extend(request.match_info)
            args = wire.parse_query(endpoint.request, query)
        else:
            body = await read_json_body(request)
            # Path parameters (e.g. /logged-models/{model_id}) count as request fields too.
            body.update(request.match_info)
            args = wire.parse_message(endpoint.request, body)
        guard = request.app.get(GUARD)
        if guard is not None:
            return json_response(await guard(request, endpoint, args))
        return json_response(await endpoint.handler(request, args))

    handle.endpoint = endpoint  # type: ignore[attr-defined]  # read by endpoint_of (authz: which route is whose)
    return handle


def endpoint_of(handler: object) -> Endpoint | None:
    """The Endpoint a route handler made by `add_endpoints` runs; None for any other handler."""
    found = getattr(handler, "endpoint", None)
    return found if isinstance(found, Endpoint) else None


def add_endpoints(app: web.Application, prefix: str, endpoints: Iterable[Endpoint]) -> None:
    for endpoint in endpoints:
        handler = _adapter(endpoint)
        for method, path in endpoint.rules():
            app.router.add_route(method, prefix + path, handler)
