"""The tracking database and the two ways to use it: a read connection or a write transaction.

SQLite gets WAL, a busy timeout, case-sensitive LIKE and a single-writer path (an asyncio lock
plus `BEGIN IMMEDIATE`), so concurrent clients queue instead of meeting "database is locked".
Other backends run writes concurrently. URIs are given the way `mlflow server` users write them
(`postgresql://`, `mysql://`); the async driver is chosen here. A SQLite store needs none: its
statements run inline (`open_database`), and a worker then never imports SQLAlchemy's asyncio
extension, which loads the ORM.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url

from tracking_core.settings import CoreSettings
from tracking_core.store.sqlite_inline import INLINE_BUSY_TIMEOUT_MS, InlineSQLite

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "mysql": "mysql+aiomysql",
    "mariadb": "mariadb+aiomysql",
    # Accepted and documented as untested: needs the aioodbc package and an ODBC driver.
    "mssql": "mssql+aioodbc",
}
SQLITE_BUSY_TIMEOUT_MS = 60_000


def async_url(uri: str) -> sa.URL:
    url = make_url("postgresql://" + uri[len("postgres://") :] if uri.startswith("postgres://") else uri)
    backend = url.get_backend_name()
    if url.get_driver_name() in ("aiosqlite", "asyncpg", "aiomysql", "asyncmy", "aioodbc"):
        return url
    return url.set(drivername=ASYNC_DRIVERS.get(backend, url.drivername))


def is_mysql(uri: str) -> bool:
    return async_url(uri).get_backend_name() in ("mysql", "mariadb")


def connect_failure(orig: BaseException, config: CoreSettings, uri: str) -> str:
    """Why connecting to `uri` failed, in one line: the driver's message, and for MySQL the TLS
    error aiomysql hides and a hint at the setting to change (never the password)."""
    if not is_mysql(uri):
        return str(orig)
    from tracking_core.store import mysql_tls  # lazy: aiomysql only for MySQL URIs

    return mysql_tls.explain(orig, config)


def create_engine(config: CoreSettings, uri: str | None = None) -> AsyncEngine:
    # Lazy: importing SQLAlchemy's asyncio extension loads its ORM (~50 ms), which a SQLite worker
    # never needs (see open_database).
    from sqlalchemy.ext.asyncio import create_async_engine

    url = async_url(uri or config.backend_store_uri)
    backend = url.get_backend_name()
    kwargs: dict[str, Any] = {"pool_size": config.db_pool_size, "max_overflow": config.db_max_overflow}
    if backend != "sqlite":
        # The extra connections a load opens are kept, not closed the moment fewer are busy:
        # SQLAlchemy's overflow closes a connection handed back while db_pool_size are idle, and
        # on an event loop the number busy swings from a few to all within a millisecond, so a
        # steady 16 clients opened a new database session for one request in ten (147 per 1,600
        # log_metric on PostgreSQL; a session costs the server a process and the client a
        # handshake and its statement cache). Opened only as load demands, as before; closed by
        # db_pool_recycle or when the worker stops.
        kwargs.update(pool_size=config.db_pool_size + config.db_max_overflow, max_overflow=0)
    if config.db_pool_recycle:
        kwargs["pool_recycle"] = config.db_pool_recycle
    if backend in ("mysql", "mariadb"):
        from tracking_core.store import mysql_tls  # lazy: aiomysql only for MySQL URIs

        kwargs["connect_args"] = mysql_tls.connect_args(config)
    engine = create_async_engine(url, **kwargs)
    if backend == "sqlite":
        _configure_sqlite(engine.sync_engine)
    else:
        event.listen(engine.sync_engine.pool, "checkout", _refuse_closed)
    return engine


def _refuse_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Replace a pooled connection the driver already knows is closed (the server restarted or
    ended it), without a round trip.

    This stands in for `pool_pre_ping`, which costs a round trip on every checkout. A connection
    dropped silently (no FIN reached us) still fails its first statement; SQLAlchemy then
    invalidates it, and the request answers 503 + Retry-After, which the client retries.
    `db_pool_recycle` bounds how old a connection gets, for networks that drop idle ones.
    """
    driver = getattr(dbapi_connection, "driver_connection", None)
    is_closed = getattr(driver, "is_closed", None)  # asyncpg
    closed = is_closed() if callable(is_closed) else getattr(driver, "closed", False)  # aiomysql
    if closed:
        raise sa.exc.DisconnectionError("the server closed this connection")


def open_database(config: CoreSettings, uri: str | None = None, replica: AsyncEngine | None = None) -> Database:
    """The store's database at `uri` (default: the tracking store). On SQLite every statement runs
    inline (sqlite_inline), so no async engine is built at all."""
    url = async_url(uri or config.backend_store_uri)
    if url.get_backend_name() == "sqlite":
        return Database(None, replica, inline=InlineSQLite(_inline_sqlite_engine(url)))
    return Database(create_engine(config, uri), replica)


def _inline_sqlite_engine(url: sa.URL) -> sa.Engine:
    """A synchronous engine on the SQLite file of `url`, for InlineSQLite.

    Inline work never interleaves on the loop, so the default small pool is plenty.
    """
    sync = sa.create_engine(url.set(drivername="sqlite+pysqlite"))
    _configure_sqlite(sync, busy_timeout_ms=INLINE_BUSY_TIMEOUT_MS)
    return sync


def _configure_sqlite(engine: sa.Engine, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us emit BEGIN ourselves (the driver's implicit BEGIN is DEFERRED, which makes a
        # reader that later writes fail with SQLITE_BUSY instead of waiting).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            f"busy_timeout={busy_timeout_ms}",
            "foreign_keys=ON",
            # MLflow's LIKE is case-sensitive; ILIKE compiles to lower() LIKE lower().
            "case_sensitive_like=ON",
        ):
            cursor.execute("PRAGMA " + pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: sa.Connection) -> None:
        # Inline writes begin on the driver (sqlite_inline); SQLAlchemy then only joins them.
        if getattr(conn.connection.dbapi_connection, "in_transaction", False):
            return
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("tg_write") else "BEGIN")


# True while a request whose reads may come from the read replica is handled (see tracking_core/replica.py).
replica_reads: contextvars.ContextVar[bool] = contextvars.ContextVar("trackgate_replica_reads", default=False)


class Database:
    """Owns the engine; hands out read connections and write transactions.

    SQLite runs inline on the event loop (see `sqlite_inline`); other backends use their async
    driver, and their writes run concurrently.
    """

    def __init__(
        self, engine: AsyncEngine | None, replica: AsyncEngine | None = None, *, inline: InlineSQLite | None = None
    ) -> None:
        """`engine`: an async engine (on SQLite, its file is used inline); or None with `inline`."""
        if engine is not None and engine.dialect.name == "sqlite" and inline is None:
            inline = InlineSQLite(_inline_sqlite_engine(engine.url))
        self.engine = engine
        # --read-replica-backend-store-uri: used by read() only while replica_reads is set.
        self._replica = replica
        self._inline = inline
        self.is_sqlite = inline is not None
        if engine is None:
            assert inline is not None, "a Database needs an engine or an inline SQLite"
            self.dialect = "sqlite"
            return
        self.dialect = engine.dialect.name
        self._write_engine = engine.execution_options(tg_write=True)
        # PostgreSQL reads without BEGIN/ROLLBACK: two round trips fewer, and under READ
        # COMMITTED (the default) each statement takes its own snapshot inside a transaction too.
        self._read_engine = (
            engine.execution_options(isolation_level="AUTOCOMMIT") if self.dialect == "postgresql" else engine
        )

    @property
    def pool(self) -> sa.Pool:
        """The pool the statements are served from (on SQLite, the inline engine's)."""
        if self._inline is not None:
            return self._inline.engine.pool
        assert self.engine is not None
        return self.engine.pool

    # Plain functions handing back the underlying context manager: the store opens one of these
    # per request, and a generator-based wrapper around it would cost as much as a SQLite insert.
    def read(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        if self._inline is not None:
            return self._inline.read()  # type: ignore[return-value]  # the AsyncConnection subset the store uses
        if self._replica is not None and replica_reads.get():
            return self._replica.connect()
        return self._read_engine.connect()

    def write(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        """One transaction, committed before the block's caller answers the client."""
        if self._inline is not None:
            return self._inline.write()  # type: ignore[return-value]
        return self._write_engine.begin()

    def autocommit(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        """A PostgreSQL connection without BEGIN/COMMIT, for writes made of statements each atomic
        on its own (data-modifying CTEs, see pg_writes): one round trip each instead of three."""
        assert self.dialect == "postgresql"
        return self._read_engine.connect()

    async def ping(self) -> None:
        if self._inline is not None:
            self._inline.ping()
            return
        async with self._read_engine.connect() as conn:  # PostgreSQL: no BEGIN/ROLLBACK around it
            await conn.execute(sa.text("SELECT 1"))

    async def close(self) -> None:
        if self._inline is not None:
            self._inline.close()
        if self.engine is not None:
            await self.engine.dispose()
        if self._replica is not None:
            await self._replica.dispose()
