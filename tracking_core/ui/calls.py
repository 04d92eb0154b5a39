"""The UI reads and writes through the API's own handlers: one data path, one set of checks.

A page calls `call(request, ENDPOINTS, "experiments/search", filter=...)` and gets exactly the
dict the REST endpoint would serialise: the same validation, the same store functions, and the
same authorization guard (routing.GUARD) for the caller of `request`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from aiohttp import web

from tracking_core.api import wire
from tracking_core.api.routing import GUARD, Endpoint

# The list pages' `view=` choices, as the search endpoints' view types.
VIEWS = {"active": "ACTIVE_ONLY", "deleted": "DELETED_ONLY", "all": "ALL"}


def literal(text: str) -> str:
    """`text` as a quoted string of the search grammar, for a filter a page builds."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def find(endpoints: Iterable[Endpoint], path: str) -> Endpoint:
    for endpoint in endpoints:
        if endpoint.path == path:
            return endpoint
    raise LookupError(path)


async def call(
    request: web.Request, endpoints: Iterable[Endpoint], endpoint_path: str, /, **body: Any
) -> dict[str, Any]:
    endpoint = find(endpoints, endpoint_path)
    args = wire.parse_message(endpoint.request, {k: v for k, v in body.items() if v is not None})
    # With authorization on, the adapter runs every endpoint through its guard; so does the UI.
    guard = request.app.get(GUARD)
    result = await (guard(request, endpoint, args) if guard is not None else endpoint.handler(request, args))
    # Stores may hand back pre-serialised JSON (orjson.Fragment, the SQLite fast path); a page
    # wants plain values, exactly what an API client would decode.
    return orjson.loads(orjson.dumps(result))  # type: ignore[no-any-return]
