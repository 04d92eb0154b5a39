"""SQLite statements run directly on the event loop, through a synchronous connection.

Why: with an async driver every SQLite statement is a round trip to a helper thread (several
thread hand-offs, ~0.3 ms each here), which costs far more than the statement itself: a page of
the index and a few rows in the page cache. Running the same SQLAlchemy Core statements on the
loop thread makes each store operation one uninterrupted piece of work, and since SQLite admits
one writer at a time anyway, nothing is lost by not overlapping them.

What keeps the loop from stalling: WAL mode (readers never wait for writers), a short busy
timeout on these connections, and `BEGIN IMMEDIATE` retried with `asyncio.sleep` back-off when
another process (a second worker, a backup tool) holds the write lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import sqlalchemy as sa

# Bounded blocking of the loop when the database is briefly locked by another process.
INLINE_BUSY_TIMEOUT_MS = 100
# How long a writer keeps retrying a locked database before the request fails with 503.
WRITE_LOCK_PATIENCE_S = 60.0


class InlineConnection:
    """The part of `AsyncConnection` the store uses, over a synchronous SQLite connection.

    Store code is written once against the async API; for SQLite its awaits complete without
    ever leaving the event loop thread.
    """

    def __init__(self, connection: sa.Connection) -> None:
        self.sync_connection = connection
        self.dialect = connection.dialect

    async def execute(self, statement: Any, parameters: Any = None) -> sa.CursorResult[Any]:
        return self.sync_connection.execute(statement, parameters)

    async def scalar(self, statement: Any, parameters: Any = None) -> Any:
        return self.sync_connection.scalar(statement, parameters)

    async def scalars(self, statement: Any, parameters: Any = None) -> sa.ScalarResult[Any]:
        return self.sync_connection.scalars(statement, parameters)

    async def run_sync(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return fn(self.sync_connection, *args, **kwargs)

    @contextlib.asynccontextmanager
    async def begin_nested(self) -> AsyncIterator[None]:
        with self.sync_connection.begin_nested():
            yield


def _is_locked(exc: sa.exc.OperationalError) -> bool:
    return "locked" in str(exc.orig) or "busy" in str(exc.orig)


class InlineSQLite:
    """Read connections and write transactions for one SQLite database file."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._write_engine = engine.execution_options(tg_write=True)
        # Held across the whole write so that two requests of this process never race for
        # SQLite's lock (the loser would spin in the retry below for nothing).
        self._write_lock = asyncio.Lock()

    @contextlib.contextmanager
    def _connect(self, engine: sa.Engine) -> Iterator[sa.Connection]:
        with engine.connect() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[InlineConnection]:
        with self._connect(self.engine) as conn:
            yield InlineConnection(conn)

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[InlineConnection]:
        async with self._write_lock:
            conn, transaction = await self._begin_write()
            try:
                yield InlineConnection(conn)
                transaction.commit()
            except BaseException:
                transaction.rollback()
                raise
            finally:
                conn.close()

    async def _begin_write(self) -> tuple[sa.Connection, sa.RootTransaction]:
        deadline = time.monotonic() + WRITE_LOCK_PATIENCE_S
        delay = 0.002
        while True:
            conn = self._write_engine.connect()
            try:
                return conn, conn.begin()  # emits BEGIN IMMEDIATE (see database._configure_sqlite)
            except sa.exc.OperationalError as exc:
                conn.close()
                if not _is_locked(exc) or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    def ping(self) -> None:
        with self._connect(self.engine) as conn:
            conn.execute(sa.text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()
