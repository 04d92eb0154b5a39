"""One schema change at a time, across processes and machines.

`trackgate db upgrade` may run twice at once (two deploy pipelines, a Job retried while the first
attempt still runs) and several replicas may start together on an empty database; each would
otherwise create the same tables. Whoever holds the lock re-reads the schema state, so the
second one finds the work done. The lock lives in the database server, so it covers every
machine that can reach it:

- PostgreSQL: a transaction-level advisory lock, released by the commit (or rollback).
- MySQL/MariaDB: GET_LOCK, a named session lock (DDL commits implicitly there, so a transaction
  could not hold it); released explicitly, and by the server if the session dies.
- SQLite: the transaction starts with BEGIN IMMEDIATE (the engine's `tg_write` option), which
  admits one writer at a time; a second waits for the busy timeout.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

# Any fixed 64-bit number; it names trackgate's schema lock among the database's advisory locks.
PG_LOCK_KEY = 0x7472_6B67_7363_6D61  # "trkgscma"
MYSQL_LOCK_NAME = "trackgate.schema"
MYSQL_LOCK_TIMEOUT = 600  # seconds a second `db upgrade` waits for the first


class SchemaLockTimeout(Exception):
    """The lock was held by someone else for longer than we wait."""


@contextlib.asynccontextmanager
async def locked_transaction(connection: AsyncConnection) -> AsyncIterator[None]:
    """A transaction on `connection` that no other schema change runs beside."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        async with connection.begin():
            await connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
            yield
    elif dialect in ("mysql", "mariadb"):
        got = await connection.scalar(
            sa.text("SELECT GET_LOCK(:name, :timeout)"), {"name": MYSQL_LOCK_NAME, "timeout": MYSQL_LOCK_TIMEOUT}
        )
        await connection.commit()  # close the implicit transaction the SELECT opened
        if got != 1:
            raise SchemaLockTimeout(f"another schema change held the lock for {MYSQL_LOCK_TIMEOUT} s")
        try:
            async with connection.begin():
                yield
        finally:
            await connection.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": MYSQL_LOCK_NAME})
            await connection.commit()
    else:
        if dialect == "sqlite":
            await connection.execution_options(tg_write=True)  # BEGIN IMMEDIATE
        async with connection.begin():
            yield
