"""The audit log for admins: GET /api/2.0/trackgate/audit/search (newest first)."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from tracking_core.api.auth_users import caller_of
from tracking_core.api.routing import Endpoint
from tracking_core.api.wire import INT64, Field
from tracking_core.authz.state import AUTHZ, require_admin
from tracking_core.store import audit as audit_store

DEFAULT_SINCE_MS = 86_400_000


async def search(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    require_admin(await caller_of(request))
    since = a["since_ms"] if a["since_ms"] is not None else int(time.time() * 1000) - DEFAULT_SINCE_MS
    records = await audit_store.query(
        request.app[AUTHZ].db, since, a["subject"], a["action"], a["max_results"] or 1000
    )
    return {"records": records}


ENDPOINTS = (
    Endpoint("audit/search", ("GET",), search, (
        Field("since_ms", INT64), Field("subject"), Field("action"), Field("max_results", INT64),
    ), service="trackgate"),
)
