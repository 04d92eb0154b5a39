"""MLflow 3.17's roles API (/api/3.0/mlflow/roles/...): admins manage roles, their grants and
members; a user may list their own roles. Roles live in a workspace as MLflow scopes them;
trackgate has the one workspace `default`. A caller's groups (OIDC/JWT `groups`, certificate
rules) count as membership in the role of the same name, without an assignment.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tracking_core.api.auth_users import caller_of, required, write
from tracking_core.api.routing import Endpoint
from tracking_core.api.wire import INT64, Field
from tracking_core.authz.permissions import WILDCARD, parse_grantable, resource_type
from tracking_core.authz.state import AUTHZ, denied, require_admin
from tracking_core.errors import invalid
from tracking_core.store import roles as role_store
from tracking_core.store.grants import WORKSPACE

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection


def _workspace(a: dict[str, Any], required: bool = True) -> str | None:
    workspace = a.get("workspace")
    if not workspace:
        if required:
            raise invalid("Missing value for required parameter 'workspace'.")
        return None
    if workspace != WORKSPACE:
        raise invalid(f"Unknown workspace '{workspace}': this server has the one workspace '{WORKSPACE}'.")
    return WORKSPACE


def _int(a: dict[str, Any], name: str) -> int:
    value = a.get(name)
    if value is None:
        raise invalid(f"Missing value for required parameter '{name}'.")
    return int(value)


async def _admin(request: web.Request) -> None:
    require_admin(await caller_of(request))


async def _admin_read(request: web.Request, action: Callable[[AsyncConnection], Awaitable[Any]]) -> Any:
    await _admin(request)
    async with request.app[AUTHZ].db.read() as conn:
        return await action(conn)


async def create(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    await _admin(request)
    workspace, name = _workspace(a), required(a, "name")
    assert workspace is not None
    role = await write(request, f"create role {name}",
                       lambda c: role_store.create(c, workspace, name, a.get("description")))
    return {"role": role}


async def get(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    return {"role": await _admin_read(request, lambda c: role_store.get(c, _int(a, "role_id")))}


async def list_roles(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    return {"roles": await _admin_read(request, lambda c: role_store.list_roles(c, _workspace(a, required=False)))}


async def update(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    await _admin(request)
    role_id = _int(a, "role_id")
    role = await write(request, f"update role {role_id}",
                       lambda c: role_store.update(c, role_id, a.get("name"), a.get("description")))
    return {"role": role}


async def delete(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    await _admin(request)
    role_id = _int(a, "role_id")
    await write(request, f"delete role {role_id}", lambda c: role_store.delete(c, role_id))
    return {}


async def add_permission(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    await _admin(request)
    role_id, rtype = _int(a, "role_id"), resource_type(a.get("resource_type"))
    pattern = str(a.get("resource_pattern") or WILDCARD)
    permission = parse_grantable(a.get("permission")).name
    added = await write(request, f"role {role_id}: grant {permission} on {rtype} {pattern}",
                        lambda c: role_store.add_permission(c, role_id, rtype, pattern, permission))
    return {"role_permission": added}


async def remove_permission(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    await _admin(request)
    pid = _int(a, "role_permission_id")
    await write(request, f"remove role permission {pid}", lambda c: role_store.remove_permission(c, pid))
    return {}


async def list_permissions(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    found = await _admin_read(request, lambda c: role_store.list_permissions(c, _int(a, "role_id")))
    return {"role_permissions": found}


async def update_permission(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    await _admin(request)
    pid = _int(a, "role_permission_id")
    permission = parse_grantable(a.get("permission")).name
    updated = await write(request, f"role permission {pid}: {permission}",
                          lambda c: role_store.update_permission(c, pid, permission))
    return {"role_permission": updated}


async def assign(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    await _admin(request)
    username, role_id = required(a, "username"), _int(a, "role_id")
    assignment = await write(request, f"assign role {role_id} to {username}",
                             lambda c: role_store.assign(c, username, role_id))
    return {"assignment": assignment}


async def unassign(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    await _admin(request)
    username, role_id = required(a, "username"), _int(a, "role_id")
    await write(request, f"unassign role {role_id} from {username}",
                lambda c: role_store.unassign(c, username, role_id))
    return {}


async def user_roles(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    username = required(a, "username")
    caller = await caller_of(request)
    if not caller.is_admin and caller.subject != username:
        raise denied("Permission denied: only administrators may list another user's roles.")
    async with request.app[AUTHZ].db.read() as conn:
        return {"roles": await role_store.roles_of(conn, username)}


async def role_users(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    return {"assignments": await _admin_read(request, lambda c: role_store.members(c, _int(a, "role_id")))}


ROLE_ID = Field("role_id", INT64)
PERMISSION_ID = Field("role_permission_id", INT64)
ENDPOINTS = tuple(
    Endpoint(path, methods, handler, fields, version="3.0")
    for path, methods, handler, fields in (
        ("roles/create", ("POST",), create, (Field("workspace"), Field("name"), Field("description"))),
        ("roles/get", ("GET",), get, (ROLE_ID,)),
        ("roles/list", ("GET",), list_roles, (Field("workspace"),)),
        ("roles/update", ("PATCH",), update, (ROLE_ID, Field("name"), Field("description"))),
        ("roles/delete", ("DELETE",), delete, (ROLE_ID,)),
        ("roles/permissions/add", ("POST",), add_permission, (
            ROLE_ID, Field("resource_type"), Field("resource_pattern"), Field("permission"),
        )),
        ("roles/permissions/remove", ("DELETE",), remove_permission, (PERMISSION_ID,)),
        ("roles/permissions/list", ("GET",), list_permissions, (ROLE_ID,)),
        ("roles/permissions/update", ("PATCH",), update_permission, (PERMISSION_ID, Field("permission"))),
        ("roles/assign", ("POST",), assign, (Field("username"), ROLE_ID)),
        ("roles/unassign", ("DELETE",), unassign, (Field("username"), ROLE_ID)),
        ("users/roles/list", ("GET",), user_roles, (Field("username"),)),
        ("roles/users/list", ("GET",), role_users, (ROLE_ID,)),
    )
)
