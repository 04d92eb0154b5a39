"""Secrets generated once and kept in the tracking database, so that every replica shares them.

Used when no secret is configured (a single server, a quick start): the first replica to start
inserts one, every other replica (and every restart) reads that one. Two replicas starting at
once both try to insert; the primary key lets one win, and the other reads the winner's.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine


async def get_or_create(engine: AsyncEngine | None, name: str, generate: Callable[[], str]) -> str:
    """The stored secret `name`, created with `generate()` if there is none yet.

    `engine` is the gateway's own (app[keys.auth_engine]) or the CLI's; None only with artifacts_only,
    where there is no database and the configuration check has already required the secret to be set.
    """
    if engine is None:
        raise RuntimeError(f"no database to keep the generated {name} in: configure it")
    # Lazy: the store's tables stay out of the gateway's import path until needed.
    from tracking_core.store.tables import gateway_secrets as table

    select = sa.select(table.c.value).where(table.c.name == name)
    async with engine.connect() as conn:
        value = await conn.scalar(select)
    if value is not None:
        return str(value)
    try:
        async with engine.begin() as conn:
            candidate = generate()
            await conn.execute(table.insert().values(name=name, value=candidate, created_time=int(time.time() * 1000)))
            return candidate
    except sa.exc.IntegrityError:
        async with engine.connect() as conn:  # another replica was first: use its secret
            return str(await conn.scalar(select))
