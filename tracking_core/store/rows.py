"""Plain result rows for the read paths that return thousands of them.

SQLAlchemy builds a Row object (with type processing) per row; for the long results of search
and metric history that costs more than the query. On SQLite the driver's own tuples already hold
exactly the values the store needs (booleans as 0/1), so they are taken straight from the cursor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection


async def plain_rows(conn: AsyncConnection, statement: Any, parameters: Any = None) -> Sequence[Sequence[Any]]:
    result = await conn.execute(statement, parameters)
    if conn.dialect.name != "sqlite":
        return result.all()
    rows: Sequence[Sequence[Any]] = result.cursor.fetchall()  # type: ignore[union-attr]
    result.close()
    return rows
