"""SQLite statements run directly on the event loop, through a synchronous connection.

Why: with an async driver every SQLite statement is a round trip to a helper thread (several
thread hand-offs, ~0.3 ms each here), which costs far more than the statement itself: a page of
the index and a few rows in the page cache. Running the same SQLAlchemy Core statements on the
loop thread makes each store operation one uninterrupted piece of work, and since SQLite admits
one writer at a time anyway, nothing is lost by not overlapping them.

What keeps the loop from stalling: WAL mode (readers never wait for writers), a short busy
timeout on these connections, and `BEGIN IMMEDIATE` retried with `asyncio.sleep` back-off when
another process (a second worker, a backup tool) holds the write lock.

Writes go through one connection kept open for the process's lifetime (SQLite admits one writer
anyway), and their transaction is begun and ended on the driver connection itself: a transaction
through SQLAlchemy's pool, its events and its Transaction object costs several times the few
statements of a `log_metric`. The hot write statements run on the driver too (`driver()`, see
`sqlite_writes`); everything else still goes through SQLAlchemy on the same connection, inside
the same transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
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
        # The sqlite3 connection underneath, for the statements that skip SQLAlchemy.
        self.driver: sqlite3.Connection = connection.connection.dbapi_connection  # type: ignore[assignment]

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


def driver(conn: object) -> sqlite3.Connection | None:
    """The sqlite3 connection behind an inline connection; None on any other backend."""
    return getattr(conn, "driver", None) if isinstance(conn, InlineConnection) else None


def _is_locked(exc: sqlite3.Error) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))


def _as_sqlalchemy(exc: sqlite3.Error) -> sa.exc.DBAPIError:
    """A driver error from the statements that skip SQLAlchemy, as the error SQLAlchemy would have
    raised, so that the core's one error mapping (locked -> 503, ...) sees the same type."""
    return sa.exc.DBAPIError.instance(None, None, exc, sqlite3.Error)


class _ReadConnection:
    """`async with`: a pooled connection for reads (a class for the reason `_WriteTransaction` is)."""

    __slots__ = ("_connection", "_engine")

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._connection: sa.Connection | None = None

    async def __aenter__(self) -> InlineConnection:
        self._connection = self._engine.connect()
        return InlineConnection(self._connection)

    async def __aexit__(self, *_: object) -> None:
        assert self._connection is not None
        self._connection.close()


class _WriteTransaction:
    """`async with`: the write lock, BEGIN IMMEDIATE; COMMIT on success, ROLLBACK on any error.

    A class rather than a generator-based context manager: it is entered on every write request,
    and contextlib's machinery costs about as much as the statements of a `log_metric`.
    """

    __slots__ = ("_inline", "_sqlite")

    def __init__(self, sqlite: InlineSQLite) -> None:
        self._sqlite = sqlite
        self._inline: InlineConnection | None = None

    async def __aenter__(self) -> InlineConnection:
        await self._sqlite._write_lock.acquire()
        try:
            self._inline = await self._sqlite._begin_write()
        except BaseException:
            self._sqlite._write_lock.release()
            raise
        return self._inline

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        inline = self._inline
        assert inline is not None
        try:
            if exc_type is None:
                self._sqlite._commit(inline)
            else:
                self._sqlite._rollback(inline)
                if isinstance(exc, sqlite3.Error):
                    raise _as_sqlalchemy(exc) from exc
        finally:
            self._sqlite._write_lock.release()


class InlineSQLite:
    """Read connections and write transactions for one SQLite database file."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        # Held across the whole write so that two requests of this process never race for
        # SQLite's lock (the loser would spin in the retry below for nothing).
        self._write_lock = asyncio.Lock()
        self._writer: sa.Connection | None = None

    def read(self) -> _ReadConnection:
        return _ReadConnection(self.engine)

    def write(self) -> _WriteTransaction:
        """One transaction on the write connection, committed before the block's caller goes on."""
        return _WriteTransaction(self)

    def _commit(self, inline: InlineConnection) -> None:
        try:
            inline.driver.execute("COMMIT")
        except sqlite3.Error as exc:
            self._end_failed(inline)
            raise _as_sqlalchemy(exc) from exc
        finally:
            self._forget_transaction()

    def _rollback(self, inline: InlineConnection) -> None:
        self._end_failed(inline)
        self._forget_transaction()

    def _forget_transaction(self) -> None:
        if self._writer is not None and self._writer.in_transaction():
            # SQLAlchemy's own bookkeeping for statements it ran in this transaction; the
            # driver has already ended it, so this sends nothing.
            self._writer.rollback()

    def _end_failed(self, inline: InlineConnection) -> None:
        try:
            if inline.driver.in_transaction:
                inline.driver.execute("ROLLBACK")
        except sqlite3.Error:
            # A connection that cannot even roll back is replaced for the next write.
            self._close_writer()

    def _write_connection(self) -> InlineConnection:
        if self._writer is None or self._writer.closed or self._writer.invalidated:
            self._close_writer()
            self._writer = self.engine.connect()
        return InlineConnection(self._writer)

    async def _begin_write(self) -> InlineConnection:
        deadline = time.monotonic() + WRITE_LOCK_PATIENCE_S
        delay = 0.002
        while True:
            inline = self._write_connection()
            try:
                inline.driver.execute("BEGIN IMMEDIATE")
                return inline
            except sqlite3.Error as exc:
                if not _is_locked(exc) or time.monotonic() > deadline:
                    raise _as_sqlalchemy(exc) from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _close_writer(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
            self._writer = None

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def close(self) -> None:
        self._close_writer()
        self.engine.dispose()
