"""Roles (MLflow's RBAC API): named sets of grants, and which subjects hold them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from tracking_core.errors import already_exists, not_found
from tracking_core.store.grants import principal_id
from tracking_core.store.tables import principals, role_assignments, role_permissions, roles

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

R, RP, RA, P = roles.c, role_permissions.c, role_assignments.c, principals.c


def _permission_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id, "role_id": row.role_id, "resource_type": row.resource_type,
        "resource_pattern": row.resource_pattern, "permission": row.permission,
    }


async def _role_json(conn: AsyncConnection, row: Any) -> dict[str, Any]:
    perms = await conn.execute(sa.select(role_permissions).where(RP.role_id == row.id).order_by(RP.id))
    return {
        "id": row.id, "name": row.name, "workspace": row.workspace, "description": row.description,
        "permissions": [_permission_json(p) for p in perms],
    }


async def require_role(conn: AsyncConnection, role_id: int) -> Any:
    row = (await conn.execute(sa.select(roles).where(R.id == role_id))).first()
    if row is None:
        raise not_found(f"Role with id={role_id} not found.")
    return row


async def get(conn: AsyncConnection, role_id: int) -> dict[str, Any]:
    return await _role_json(conn, await require_role(conn, role_id))


async def create(conn: AsyncConnection, workspace: str, name: str, description: str | None) -> dict[str, Any]:
    if await find(conn, workspace, name) is not None:
        raise already_exists(f"Role '{name}' already exists in workspace '{workspace}'.")
    await conn.execute(roles.insert().values(workspace=workspace, name=name, description=description))
    return await _role_json(conn, await find(conn, workspace, name))


async def list_roles(conn: AsyncConnection, workspace: str | None) -> list[dict[str, Any]]:
    stmt = sa.select(roles).order_by(R.workspace, R.name)
    if workspace is not None:
        stmt = stmt.where(R.workspace == workspace)
    return [await _role_json(conn, row) for row in (await conn.execute(stmt)).all()]


async def find(conn: AsyncConnection, workspace: str, name: str) -> Any:
    return (await conn.execute(sa.select(roles).where(R.workspace == workspace, R.name == name))).first()


async def update(conn: AsyncConnection, role_id: int, name: str | None, description: str | None) -> dict[str, Any]:
    row = await require_role(conn, role_id)
    values: dict[str, Any] = {}
    if name is not None and name != row.name:
        if await find(conn, row.workspace, name) is not None:
            raise already_exists(f"Role '{name}' already exists in workspace '{row.workspace}'.")
        values["name"] = name
    if description is not None:
        values["description"] = description
    if values:
        await conn.execute(roles.update().where(R.id == role_id).values(**values))
    return await get(conn, role_id)


async def delete(conn: AsyncConnection, role_id: int) -> None:
    await require_role(conn, role_id)
    await conn.execute(roles.delete().where(R.id == role_id))  # its grants and members cascade


async def add_permission(
    conn: AsyncConnection, role_id: int, rtype: str, pattern: str, permission: str
) -> dict[str, Any]:
    await require_role(conn, role_id)
    where = (RP.role_id == role_id, RP.resource_type == rtype, RP.resource_pattern == pattern)
    if await conn.scalar(sa.select(RP.id).where(*where)) is not None:
        raise already_exists(f"Role {role_id} already has a permission on {rtype} '{pattern}'.")
    await conn.execute(role_permissions.insert().values(
        role_id=role_id, resource_type=rtype, resource_pattern=pattern, permission=permission
    ))
    return _permission_json((await conn.execute(sa.select(role_permissions).where(*where))).one())


async def require_permission(conn: AsyncConnection, permission_id: int) -> Any:
    row = (await conn.execute(sa.select(role_permissions).where(RP.id == permission_id))).first()
    if row is None:
        raise not_found(f"Role permission with id={permission_id} not found.")
    return row


async def remove_permission(conn: AsyncConnection, permission_id: int) -> None:
    await require_permission(conn, permission_id)
    await conn.execute(role_permissions.delete().where(RP.id == permission_id))


async def update_permission(conn: AsyncConnection, permission_id: int, permission: str) -> dict[str, Any]:
    await require_permission(conn, permission_id)
    await conn.execute(role_permissions.update().where(RP.id == permission_id).values(permission=permission))
    return _permission_json(await require_permission(conn, permission_id))


async def list_permissions(conn: AsyncConnection, role_id: int) -> list[dict[str, Any]]:
    await require_role(conn, role_id)
    rows = await conn.execute(sa.select(role_permissions).where(RP.role_id == role_id).order_by(RP.id))
    return [_permission_json(r) for r in rows]


def _assignment_json(row: Any) -> dict[str, Any]:
    return {"id": row.id, "user_id": row.principal_id, "role_id": row.role_id, "username": row.subject}


_ASSIGNMENTS = sa.select(RA.id, RA.principal_id, RA.role_id, P.subject).join_from(
    role_assignments, principals, P.id == RA.principal_id
)


async def assign(conn: AsyncConnection, subject: str, role_id: int) -> dict[str, Any]:
    await require_role(conn, role_id)
    pid = await principal_id(conn, subject, create=True)
    where = (RA.principal_id == pid, RA.role_id == role_id)
    if await conn.scalar(sa.select(RA.id).where(*where)) is not None:
        raise already_exists(f"User '{subject}' already has role {role_id}.")
    await conn.execute(role_assignments.insert().values(principal_id=pid, role_id=role_id))
    return _assignment_json((await conn.execute(_ASSIGNMENTS.where(*where))).one())


async def unassign(conn: AsyncConnection, subject: str, role_id: int) -> None:
    pid = await principal_id(conn, subject)
    done = await conn.execute(role_assignments.delete().where(RA.principal_id == pid, RA.role_id == role_id))
    if pid is None or done.rowcount == 0:
        raise not_found(f"User '{subject}' does not have role {role_id}.")


async def roles_of(conn: AsyncConnection, subject: str) -> list[dict[str, Any]]:
    stmt = (
        sa.select(roles)
        .join_from(roles, role_assignments, RA.role_id == R.id)
        .join(principals, P.id == RA.principal_id)
        .where(P.subject == subject)
        .order_by(R.name)
    )
    return [await _role_json(conn, row) for row in (await conn.execute(stmt)).all()]


async def members(conn: AsyncConnection, role_id: int) -> list[dict[str, Any]]:
    await require_role(conn, role_id)
    rows = await conn.execute(_ASSIGNMENTS.where(RA.role_id == role_id).order_by(P.subject))
    return [_assignment_json(r) for r in rows]
