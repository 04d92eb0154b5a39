"""The basic-auth users (`users`), as MLflow's users API reads and changes them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from tracking_core.errors import already_exists, not_found
from tracking_core.store.clock import now_ms
from tracking_core.store.grants import principal_id
from tracking_core.store.tables import principals, users

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

U = users.c


async def find(conn: AsyncConnection, name: str) -> Any:
    return (await conn.execute(sa.select(users).where(U.name == name))).first()


async def require(conn: AsyncConnection, name: str) -> Any:
    row = await find(conn, name)
    if row is None:
        raise not_found(f"User with username={name} not found")
    return row


async def as_json(conn: AsyncConnection, name: str, is_admin: bool) -> dict[str, Any]:
    """MLflow's User: a numeric id (the subject's principal id), the name and the admin flag."""
    return {"id": await principal_id(conn, name, create=True), "username": name, "is_admin": bool(is_admin)}


async def create(conn: AsyncConnection, name: str, password_hash: str, is_admin: bool = False) -> dict[str, Any]:
    if await find(conn, name) is not None:
        raise already_exists(f"User '{name}' already exists")
    now = now_ms()
    await conn.execute(users.insert().values(
        name=name, password_hash=password_hash, is_admin=is_admin, created_time=now, password_changed_time=now
    ))
    return await as_json(conn, name, is_admin)


async def set_password(conn: AsyncConnection, name: str, password_hash: str) -> None:
    await require(conn, name)
    await conn.execute(users.update().where(U.name == name).values(
        password_hash=password_hash, password_changed_time=now_ms()
    ))


async def set_admin(conn: AsyncConnection, name: str, is_admin: bool) -> None:
    await require(conn, name)
    await conn.execute(users.update().where(U.name == name).values(is_admin=is_admin))


async def delete(conn: AsyncConnection, name: str) -> None:
    await require(conn, name)
    await conn.execute(users.delete().where(U.name == name))
    # Their grants and role memberships go too (a new user of that name starts with none).
    await conn.execute(principals.delete().where(principals.c.subject == name))


async def list_users(conn: AsyncConnection) -> list[Any]:
    return list((await conn.execute(sa.select(U.name, U.is_admin).order_by(U.name))).all())
