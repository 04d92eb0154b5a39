"""Refused sign-ins in the audit log (the core records everything after authentication).

One row per refused credential: the method, the claimed user name (never the password or the
token), the client address and the refusal. Awaited, not queued: refusals are throttled per
address already, and a slower 401 costs an attacker, not a user.
"""

from __future__ import annotations

import logging

import orjson
import sqlalchemy as sa
from aiohttp import web

from gateway import keys
from tracking_core.store.clock import now_ms
from tracking_core.store.tables import audit_log

log = logging.getLogger("trackgate.audit")


async def refused(request: web.Request, method: str, claimed: str, reason: str) -> None:
    entry = {
        "time_ms": now_ms(), "subject": claimed or None, "auth_method": method,
        "client": (request.remote or "")[:64] or None, "action": f"LOGIN {method}",
        "resource_type": None, "resource_id": None, "outcome": "denied", "status": 401, "detail": reason[:1000],
    }
    log.info("%s", orjson.dumps(entry).decode())
    engine = request.app.get(keys.auth_engine)
    if engine is None:
        return
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.insert(audit_log), [entry])
    except sa.exc.SQLAlchemyError as exc:  # the line above is in the log stream; never fail the 401
        log.warning("could not store a refused sign-in: %s", type(exc).__name__)
