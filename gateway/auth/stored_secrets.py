"""Secrets generated once and kept in the tracking database, so that every replica shares them.

Used when no secret is configured (a single server, a quick start): the first replica to start
inserts one, every other replica (and every restart) reads that one. Two replicas starting at
once both try to insert; the primary key lets one win, and the other reads the winner's.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy as sa

from gateway.config import Config


async def get_or_create(config: Config, name: str, generate: Callable[[], str]) -> str:
    """The stored secret `name`, created with `generate()` if there is none yet."""
    # Lazy: SQLAlchemy and the store stay out of the gateway's import path until needed.
    from tracking_core.store.database import create_engine
    from tracking_core.store.tables import gateway_secrets as table

    engine = create_engine(config.with_changes(db_pool_size=1, db_max_overflow=0))
    try:
        select = sa.select(table.c.value).where(table.c.name == name)
        async with engine.connect() as conn:
            value = await conn.scalar(select)
        if value is not None:
            return str(value)
        try:
            async with engine.begin() as conn:
                candidate = generate()
                await conn.execute(
                    table.insert().values(name=name, value=candidate, created_time=int(time.time() * 1000))
                )
                return candidate
        except sa.exc.IntegrityError:
            async with engine.connect() as conn:  # another replica was first: use its secret
                return str(await conn.scalar(select))
    finally:
        await engine.dispose()
