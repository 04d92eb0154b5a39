"""MLflow 3.17's per-user grant API: grant, revoke, and the effective permission on a resource.

Admins may grant anything; the holder of MANAGE on a resource may grant and revoke on it; an
effective permission is read by admins and the user themself (as in MLflow). A
second grant on the same resource answers RESOURCE_ALREADY_EXISTS, as in MLflow. Any subject may
be named, not only password users: SSO, token and certificate identities hold grants as well.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tracking_core.api.auth_users import caller_of, required, write
from tracking_core.api.routing import Endpoint
from tracking_core.api.wire import Field
from tracking_core.authz.permissions import Permission, parse_grantable, resource_type
from tracking_core.authz.state import AUTHZ, RESOURCE, denied
from tracking_core.store import grants as grant_store

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection


def _target(a: dict[str, Any]) -> tuple[str, str, str]:
    username = required(a, "username")
    rid = required(a, "resource_id")
    return username, resource_type(a.get("resource_type")), rid


async def _managed_change(
    request: web.Request, rtype: str, rid: str, detail: str, action: Callable[[AsyncConnection], Awaitable[None]]
) -> dict[str, Any]:
    """A grant or revoke on one resource: by its MANAGE holder (or an admin)."""
    caller = await caller_of(request)
    request[RESOURCE] = (rtype, rid)
    if not caller.permission(rtype, rid).allows(Permission.MANAGE):
        raise denied(f"Permission denied: granting on {rtype} '{rid}' needs MANAGE on it.")
    await write(request, detail, action)
    return {}


async def grant(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    username, rtype, rid = _target(a)
    permission = parse_grantable(a.get("permission")).name
    return await _managed_change(request, rtype, rid, f"grant {permission} on {rtype} {rid} to {username}",
                                 lambda c: grant_store.grant(c, username, rtype, rid, permission, replace=False))


async def revoke(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    username, rtype, rid = _target(a)
    return await _managed_change(request, rtype, rid, f"revoke on {rtype} {rid} from {username}",
                                 lambda c: grant_store.revoke(c, username, rtype, rid))


async def get(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    username, rtype, rid = _target(a)
    caller = await caller_of(request)
    if caller.subject != username and not caller.is_admin:
        # As MLflow: admins and the user themself; a resource's MANAGE holder may change grants on
        # it but not probe what others may do.
        raise denied("Permission denied: only administrators may read another user's permissions.")
    target = caller if caller.subject == username else await request.app[AUTHZ].callers.lookup(username)
    effective = target.permission(rtype, rid)
    # `allowed` mirrors MLflow's can_use: READ alone is not "allowed".
    return {"allowed": effective.allows(Permission.USE), "permission": effective.name}


TARGET = (Field("username"), Field("resource_type"), Field("resource_id"))
ENDPOINTS = (
    Endpoint("users/permissions/grant", ("POST",), grant, (*TARGET, Field("permission")), version="3.0"),
    Endpoint("users/permissions/revoke", ("POST",), revoke, TARGET, version="3.0"),
    Endpoint("users/permissions/get", ("GET",), get, TARGET, version="3.0"),
)
