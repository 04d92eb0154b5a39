"""PostgreSQL without a pre-ping per checkout: a connection the server ended is replaced, not used.

The pool no longer spends a round trip on every checkout; a pooled connection the driver knows is
closed (the server restarted, or an admin ended it) is swapped for a new one at checkout, so
the next request succeeds instead of failing on a dead connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
import sqlalchemy as sa

from tests.services import PG_ADMIN_URL, throwaway_postgres
from tracking_core.settings import CoreSettings
from tracking_core.store import schema
from tracking_core.store.database import Database, create_engine


@pytest.fixture(scope="module")
def pg_uri() -> Iterator[str]:
    with throwaway_postgres() as uri:
        asyncio.run(schema.prepare(CoreSettings(backend_store_uri=uri)))
        yield uri


@pytest.fixture
async def db(pg_uri: str) -> AsyncIterator[Database]:
    database = Database(create_engine(CoreSettings(backend_store_uri=pg_uri, db_pool_size=2)))
    yield database
    await database.close()


async def statements_per_write(db: Database) -> int:
    count = 0

    def one(*_: object) -> None:
        nonlocal count
        count += 1

    sa.event.listen(db.engine.sync_engine, "before_cursor_execute", one)
    try:
        async with db.write() as conn:
            await conn.execute(sa.text("SELECT 1"))
    finally:
        sa.event.remove(db.engine.sync_engine, "before_cursor_execute", one)
    return count


async def test_no_ping_on_checkout(db: Database) -> None:
    await db.ping()
    assert await statements_per_write(db) == 1


async def test_a_connection_the_server_ended_is_replaced(db: Database, pg_uri: str) -> None:
    for _ in range(2):
        async with db.read() as conn:
            before = await conn.scalar(sa.text("SELECT pg_backend_pid()"))
        admin = await asyncpg.connect(PG_ADMIN_URL.replace("postgresql://", "postgres://"))
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", before)
        finally:
            await admin.close()
        await asyncio.sleep(0.2)  # the driver sees the connection close on the event loop
        async with db.write() as conn:
            after = await conn.scalar(sa.text("SELECT pg_backend_pid()"))
        assert after != before


async def test_a_steady_load_opens_no_new_connections(pg_uri: str) -> None:
    """Connections opened for a burst above db_pool_size are kept for the next one (up to
    db_pool_size + db_max_overflow), not closed and reopened as the number busy swings."""
    db = Database(create_engine(CoreSettings(backend_store_uri=pg_uri, db_pool_size=2, db_max_overflow=6)))
    opened = 0

    def on_connect(*_: object) -> None:
        nonlocal opened
        opened += 1

    sa.event.listen(db.engine.sync_engine, "connect", on_connect)

    async def client() -> None:
        for _ in range(30):
            async with db.write() as conn:
                await conn.execute(sa.text("SELECT 1"))

    try:
        await asyncio.gather(*(client() for _ in range(8)))
        assert 2 < opened <= 8
        before = opened
        await asyncio.gather(*(client() for _ in range(8)))
        assert opened == before
    finally:
        await db.close()


async def test_the_raw_metric_write_reports_a_lost_connection_as_sqlalchemy_does(db: Database) -> None:
    """log_metric runs on the asyncpg connection itself (store/pg_writes.py); a connection lost
    under it must still come out invalidated, as OperationalError (-> one retry, else 503)."""
    from tracking_core.store import pg_writes

    bound = pg_writes.parameters("0" * 32, [], [])
    async with db.autocommit() as conn:
        assert await pg_writes.log_metrics(conn, bound) is None  # no such run: nothing written
        pid = await conn.scalar(sa.text("SELECT pg_backend_pid()"))
        admin = await asyncpg.connect(PG_ADMIN_URL.replace("postgresql://", "postgres://"))
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        await asyncio.sleep(0.2)
        with pytest.raises(sa.exc.OperationalError) as raised:
            await pg_writes.log_metrics(conn, bound)
    assert raised.value.connection_invalidated
    async with db.autocommit() as conn:  # the pool hands out a fresh one
        assert await pg_writes.log_metrics(conn, bound) is None
