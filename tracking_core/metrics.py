"""A core worker's own metrics: its database connection pool, sampled every few seconds.

Only when the gateway turned metrics on: it hands every worker PROMETHEUS_MULTIPROC_DIR, the
directory of prometheus-client's multiprocess mode, where this worker's values are written and
from which the gateway's /metrics sums all processes ("livesum": live workers only).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

from aiohttp import web

from tracking_core.keys import CONFIG, STORES

SAMPLE_INTERVAL = 2.0
# state label -> the SQLAlchemy pool method that counts it (QueuePool; other pools have fewer).
_POOL_STATES = {"checked_out": "checkedout", "idle": "checkedin", "overflow": "overflow", "size": "size"}


async def pool_metrics_ctx(app: web.Application) -> AsyncIterator[None]:
    """A cleanup_ctx entry; after the stores' (it reads their engine)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR") or app[CONFIG].artifacts_only:
        yield
        return
    from prometheus_client import Gauge

    gauge = Gauge("trackgate_db_pool_connections", "Database connections of the core workers' pools, by state.",
                  ["state"], multiprocess_mode="livesum")

    async def sample() -> None:
        while True:
            pool = app[STORES].db.pool
            for state, method in _POOL_STATES.items():
                count = getattr(pool, method, None)
                if callable(count):
                    gauge.labels(state).set(max(int(count()), 0))  # QueuePool counts overflow from -size
            await asyncio.sleep(SAMPLE_INTERVAL)

    task = asyncio.create_task(sample())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
