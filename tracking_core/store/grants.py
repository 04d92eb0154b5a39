"""Subjects' ids, their own grants, and everything that applies to a caller in one query."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from tracking_core.errors import already_exists, not_found
from tracking_core.store.clock import now_ms
from tracking_core.store.tables import grants, principals, role_assignments, role_permissions, roles, users

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

WORKSPACE = "default"  # MLflow scopes roles to a workspace; trackgate has this one
ADMIN_MARK = "__admin__"  # the resource type of the row that carries a user's admin flag

P, G = principals.c, grants.c


def caller_rows(subject: str, groups: Sequence[str]) -> sa.CompoundSelect:
    """(resource_type, pattern, permission) of every grant that applies to `subject`: its own,
    its roles' (assigned, or named like one of its groups), and a marker row if it is an admin.
    One statement, so a request costs one round trip, served by the unique and role indexes."""
    rp, r, ra = role_permissions.c, roles.c, role_assignments.c
    own = (
        sa.select(G.resource_type, G.resource_id.label("pattern"), G.permission)
        .join_from(grants, principals, P.id == G.principal_id)
        .where(P.subject == subject)
    )
    assigned = (
        sa.select(ra.role_id).join_from(role_assignments, principals, P.id == ra.principal_id)
        .where(P.subject == subject)
    )
    member = r.id.in_(assigned)
    if groups:
        member = sa.or_(member, r.name.in_(list(groups)))
    from_roles = (
        sa.select(rp.resource_type, rp.resource_pattern, rp.permission)
        .join_from(role_permissions, roles, r.id == rp.role_id)
        .where(r.workspace == WORKSPACE, member)
    )
    admin = sa.select(
        sa.literal(ADMIN_MARK), sa.literal("*"), sa.literal("MANAGE")
    ).where(users.c.name == subject, users.c.is_admin.is_(True))
    return sa.union_all(own, from_roles, admin)


async def principal_id(conn: AsyncConnection, subject: str, create: bool = False) -> int | None:
    found = await conn.scalar(sa.select(P.id).where(P.subject == subject))
    if found is not None or not create:
        return found
    await conn.execute(principals.insert().values(subject=subject, created_time=now_ms()))
    return await conn.scalar(sa.select(P.id).where(P.subject == subject))


async def grant(conn: AsyncConnection, subject: str, rtype: str, rid: str, permission: str, replace: bool) -> None:
    """A second grant on the same resource is RESOURCE_ALREADY_EXISTS unless `replace`."""
    pid = await principal_id(conn, subject, create=True)
    where = (G.principal_id == pid, G.resource_type == rtype, G.resource_id == rid)
    if await conn.scalar(sa.select(G.id).where(*where)) is not None:
        if not replace:
            raise already_exists(f"A permission on {rtype} '{rid}' for user '{subject}' already exists.")
        await conn.execute(grants.update().where(*where).values(permission=permission))
        return
    await conn.execute(
        grants.insert().values(principal_id=pid, resource_type=rtype, resource_id=rid, permission=permission)
    )


async def revoke(conn: AsyncConnection, subject: str, rtype: str, rid: str) -> None:
    pid = await principal_id(conn, subject)
    done = await conn.execute(
        grants.delete().where(G.principal_id == pid, G.resource_type == rtype, G.resource_id == rid)
    )
    if pid is None or done.rowcount == 0:
        raise not_found(f"No permission on {rtype} '{rid}' for user '{subject}'.")


async def list_grants(conn: AsyncConnection, subject: str | None = None) -> list[dict[str, Any]]:
    stmt = (
        sa.select(P.subject, G.resource_type, G.resource_id, G.permission)
        .join_from(grants, principals, P.id == G.principal_id)
        .order_by(P.subject, G.resource_type, G.resource_id)
    )
    if subject is not None:
        stmt = stmt.where(P.subject == subject)
    return [{str(k): v for k, v in r._mapping.items()} for r in await conn.execute(stmt)]


async def rename_resource(conn: AsyncConnection, rtype: str, old: str, new: str) -> None:
    """Grants follow a registered model through a rename, as in MLflow."""
    await conn.execute(grants.update().where(G.resource_type == rtype, G.resource_id == old).values(resource_id=new))
    rp = role_permissions.c
    await conn.execute(
        role_permissions.update()
        .where(rp.resource_type == rtype, rp.resource_pattern == old)
        .values(resource_pattern=new)
    )


async def forget_resource(conn: AsyncConnection, rtype: str, rid: str) -> None:
    """A deleted registered model's grants go with it: a new model of that name starts afresh."""
    await conn.execute(grants.delete().where(G.resource_type == rtype, G.resource_id == rid))
    rp = role_permissions.c
    await conn.execute(role_permissions.delete().where(rp.resource_type == rtype, rp.resource_pattern == rid))
