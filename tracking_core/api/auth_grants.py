"""MLflow 3.17's per-user grant API: grant, revoke, and the effective permission on a resource.

Admins may grant anything; the holder of MANAGE on a resource may grant and revoke on it; an
effective permission is read by admins and the user themself (as in MLflow). A
second grant on the same resource answers RESOURCE_ALREADY_EXISTS, as in MLflow. Any subject may
be named, not only password users: SSO, token and certificate identities hold grants as well.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tracking_core.api.auth_users import caller_of
from tracking_core.api.routing import Endpoint
from tracking_core.api.wire import Field
from tracking_core.authz.caller import Caller
from tracking_core.authz.permissions import Permission, parse_grantable, resource_type
from tracking_core.authz.state import AUTHZ, DETAIL, RESOURCE, denied
from tracking_core.errors import invalid
from tracking_core.store import grants as grant_store


def _target(a: dict[str, Any]) -> tuple[str, str, str]:
    username, rid = a.get("username"), a.get("resource_id")
    if not username:
        raise invalid("Missing value for required parameter 'username'.")
    if not rid:
        raise invalid("Missing value for required parameter 'resource_id'.")
    return str(username), resource_type(a.get("resource_type")), str(rid)


def _may_manage(caller: Caller, rtype: str, rid: str) -> None:
    if not caller.permission(rtype, rid).allows(Permission.MANAGE):
        raise denied(f"Permission denied: granting on {rtype} '{rid}' needs MANAGE on it.")


async def grant(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    username, rtype, rid = _target(a)
    permission = parse_grantable(a.get("permission"))
    caller = await caller_of(request)
    request[RESOURCE] = (rtype, rid)
    _may_manage(caller, rtype, rid)
    az = request.app[AUTHZ]
    async with az.db.write() as conn:
        await grant_store.grant(conn, username, rtype, rid, permission.name, replace=False)
    request[DETAIL] = f"grant {permission.name} on {rtype} {rid} to {username}"
    az.callers.clear()
    return {}


async def revoke(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    username, rtype, rid = _target(a)
    caller = await caller_of(request)
    request[RESOURCE] = (rtype, rid)
    _may_manage(caller, rtype, rid)
    az = request.app[AUTHZ]
    async with az.db.write() as conn:
        await grant_store.revoke(conn, username, rtype, rid)
    request[DETAIL] = f"revoke on {rtype} {rid} from {username}"
    az.callers.clear()
    return {}


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
