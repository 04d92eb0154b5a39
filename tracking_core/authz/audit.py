"""The audit log: one record per state-changing request, permission change and artifact download.

Records are queued in memory and written in batches (every FLUSH_SECONDS, or sooner when
BATCH are waiting), so heavy metric logging pays for a dict update, not a transaction per call.
Identical records within one batch (same subject, method, client, action, resource, outcome and
status: a training job's stream of log-metric calls) are stored once, with their count in
`detail` and the time of the first. Each stored record also goes to the `trackgate.audit`
logger as one JSON line. A record holds who, how,
from where, what, on which resource and the outcome; never a body, a header, a token or a secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import web

from tracking_core.errors import MlflowError
from tracking_core.store import audit as audit_store
from tracking_core.store.clock import now_ms
from tracking_core.store.database import Database

log = logging.getLogger("trackgate.audit")

FLUSH_SECONDS = 0.5
BATCH = 500
MAX_QUEUED = 50_000
PRUNE_EVERY_SECONDS = 3600.0
DAY_MS = 86_400_000
# What a record holds, in the order AuditSink.record takes it (and the log line prints it).
FIELDS = ("subject", "auth_method", "client", "action", "resource_type", "resource_id", "outcome", "status", "detail")
_ACTION = FIELDS.index("action")


def outcome(status: int) -> str:
    if status < 400:
        return "allowed"
    return "denied" if status in (401, 403) else "failed"


class AuditSink:
    def __init__(self, db: Database, retention_days: int) -> None:
        self._db = db
        self._retention_days = retention_days
        # record key -> [the record, how many times it happened in this batch]
        self._queue: dict[tuple[Any, ...], list[Any]] = {}
        self._wake = asyncio.Event()
        self._stopping = False

    def record(self, *fields: Any) -> None:
        """One request's record: its values in FIELDS order, which are also its key in the batch."""
        if (seen := self._queue.get(fields)) is not None:
            seen[1] += 1
            return
        if len(self._queue) >= MAX_QUEUED:  # the database is away: drop, never grow without bound
            log.warning("audit queue full; dropping a record of %s", fields[_ACTION])
            return
        self._queue[fields] = [{"time_ms": now_ms(), **dict(zip(FIELDS, fields, strict=True))}, 1]
        if len(self._queue) >= BATCH:
            self._wake.set()

    async def flush(self) -> None:
        batch = []
        for entry, count in self._queue.values():
            if count > 1:
                entry["detail"] = f"{count} requests" + (f"; {entry['detail']}" if entry["detail"] else "")
            log.info("%s", orjson.dumps(entry).decode())
            batch.append(entry)
        self._queue = {}
        try:
            await audit_store.insert(self._db, batch)
        except Exception as exc:  # the records are in the log stream already; never fail a request
            log.warning("could not store %d audit records: %s", len(batch), type(exc).__name__)

    async def _run(self) -> None:
        last_prune = 0.0
        loop = asyncio.get_running_loop()
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), FLUSH_SECONDS)
            self._wake.clear()
            await self.flush()
            if not self._stopping and loop.time() - last_prune > PRUNE_EVERY_SECONDS:
                last_prune = loop.time()
                with contextlib.suppress(Exception):
                    # A few slices per round; the rest next time, so pruning never hogs the writer.
                    await audit_store.prune(self._db, now_ms() - self._retention_days * DAY_MS, max_slices=10)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The writer for the server's lifetime. On a clean shutdown it is not cancelled (that could
        drop a batch in the middle of its INSERT): it is told to stop, ends its current round, and
        whatever is still queued is written before the database closes."""
        task = asyncio.create_task(self._run())
        try:
            yield
        finally:
            self._stopping = True
            self._wake.set()
            await task
            await self.flush()


_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DOWNLOAD_MARKS = ("/get-artifact", "/mlflow-artifacts/artifacts/", "/mlflow-artifacts/presigned/")


def audited(method: str, path: str) -> bool:
    """State-changing requests and downloads get a record."""
    if method in _WRITES:
        return True
    return method == "GET" and any(mark in path for mark in _DOWNLOAD_MARKS)


def action(method: str, where: str) -> str:
    """The route, not the concrete URL: `POST /api/2.0/mlflow/runs/log-metric`."""
    return f"{method} {where}"[:128]


def status_of(exc: BaseException) -> int:
    if isinstance(exc, MlflowError):
        return exc.status
    if isinstance(exc, web.HTTPException):
        return exc.status
    return 500
