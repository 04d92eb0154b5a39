"""MLflow's users API (`mlflow.server.auth` 3.17): the basic-auth users and the caller's own view.

Only admins manage users; a user may read themself and change their own password (giving the
current one). Served only when the gateway authenticates (as `mlflow server --app-name
basic-auth` serves it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web

from tracking_core import passwords, user_rules
from tracking_core.api.routing import Endpoint
from tracking_core.api.wire import BOOL, Field
from tracking_core.authz.caller import Caller
from tracking_core.authz.state import AUTHZ, DETAIL, current, denied, require_admin
from tracking_core.errors import ErrorCode, MlflowError, invalid
from tracking_core.store import grants as grant_store
from tracking_core.store import roles as role_store
from tracking_core.store import users as user_store

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

T = TypeVar("T")


async def caller_of(request: web.Request) -> Caller:
    found = await current(request)
    if found is None or found.subject is None:
        raise MlflowError(ErrorCode.UNAUTHENTICATED, "Authentication required.")
    return found


def required(a: dict[str, Any], name: str) -> str:
    value = a.get(name)
    if not value:
        raise invalid(f"Missing value for required parameter '{name}'.")
    return str(value)


async def _admin_or_self(request: web.Request, username: str) -> Caller:
    caller = await caller_of(request)
    if not caller.is_admin and caller.subject != username:
        raise denied("Permission denied: only administrators may read or change other users.")
    return caller


async def write(request: web.Request, detail: str, action: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Runs `action` in a write transaction, then names the change in the request's audit record
    and drops this worker's cached callers (their grants may have changed)."""
    async with request.app[AUTHZ].db.write() as conn:
        result = await action(conn)
    request[DETAIL] = detail
    request.app[AUTHZ].callers.clear()
    return result


def _checked(check: Callable[[str], str], value: str) -> str:
    try:
        return check(value)
    except user_rules.CredentialRuleError as exc:
        raise invalid(f"{str(exc)[0].upper()}{str(exc)[1:]}.") from None


async def create(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    require_admin(await caller_of(request))
    username, password = required(a, "username"), required(a, "password")
    _checked(user_rules.check_name, username)
    _checked(user_rules.check_password, password)
    hashed = await asyncio.to_thread(passwords.hash_password, password)
    user = await write(request, f"create user {username}", lambda c: user_store.create(c, username, hashed))
    return {"user": user}


async def get(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    username = required(a, "username")
    await _admin_or_self(request, username)
    async with request.app[AUTHZ].db.write() as conn:
        row = await user_store.require(conn, username)
        return {"user": await user_store.as_json(conn, row.name, row.is_admin)}


async def current_user(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    caller = await caller_of(request)
    assert caller.subject is not None
    async with request.app[AUTHZ].db.write() as conn:
        user = await user_store.as_json(conn, caller.subject, caller.is_admin)
    return {"user": user, "is_basic_auth": caller.method == "basic"}


async def update_password(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    username, password = required(a, "username"), required(a, "password")
    _checked(user_rules.check_password, password)
    caller = await _admin_or_self(request, username)
    if caller.subject == username:
        # Self-service re-asserts the current password, so a borrowed session cannot rotate it.
        current_password = a.get("current_password")
        if not current_password:
            raise invalid("Current password is required when changing your own password.")
        async with request.app[AUTHZ].db.read() as conn:
            row = await user_store.require(conn, username)
        try:
            ok = await asyncio.to_thread(passwords.verify, row.password_hash, current_password)
        except passwords.UnsupportedHash:
            ok = False
        if not ok:
            raise invalid("Current password does not match.")
        if password == current_password:
            raise invalid("New password must differ from the current password.")
    hashed = await asyncio.to_thread(passwords.hash_password, password)
    await write(request, f"change password of {username}", lambda c: user_store.set_password(c, username, hashed))
    return {}


async def update_admin(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    require_admin(await caller_of(request))
    username = required(a, "username")
    if a.get("is_admin") is None:
        raise invalid("Missing value for required parameter 'is_admin'.")
    is_admin = bool(a["is_admin"])
    await write(request, f"set is_admin={is_admin} for {username}",
                lambda c: user_store.set_admin(c, username, is_admin))
    return {}


async def delete(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    caller = await caller_of(request)
    require_admin(caller)
    username = required(a, "username")
    if username == caller.subject:
        raise MlflowError(
            ErrorCode.BAD_REQUEST,
            "Users cannot delete their own account. Ask another admin to delete this user instead.",
        )
    await write(request, f"delete user {username}", lambda c: user_store.delete(c, username))
    return {}


async def list_users(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    require_admin(await caller_of(request))
    out = []
    async with request.app[AUTHZ].db.write() as conn:
        for row in await user_store.list_users(conn):
            user = await user_store.as_json(conn, row.name, row.is_admin)
            out.append({**user, "roles": await role_store.roles_of(conn, row.name)})
    return {"users": out}


async def _permission_rows(request: web.Request, username: str) -> list[dict[str, Any]]:
    """MLflow lists every grant as a row of one of the user's roles; a user's own grants are
    the rows of its synthetic `__user_<id>__` role."""
    async with request.app[AUTHZ].db.write() as conn:
        pid = await grant_store.principal_id(conn, username, create=True)
        rows = [
            {"role_id": None, "role_name": f"__user_{pid}__", "workspace": grant_store.WORKSPACE,
             "resource_type": g["resource_type"], "resource_pattern": g["resource_id"], "permission": g["permission"]}
            for g in await grant_store.list_grants(conn, username)
        ]
        for role in await role_store.roles_of(conn, username):
            rows += [
                {"role_id": role["id"], "role_name": role["name"], "workspace": role["workspace"],
                 "resource_type": p["resource_type"], "resource_pattern": p["resource_pattern"],
                 "permission": p["permission"]}
                for p in role["permissions"]
            ]
    return rows


async def current_permissions(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    caller = await caller_of(request)
    assert caller.subject is not None
    return {"is_admin": caller.is_admin, "permissions": await _permission_rows(request, caller.subject)}


async def list_permissions(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    username = required(a, "username")
    await _admin_or_self(request, username)
    target = await request.app[AUTHZ].callers.lookup(username)
    return {"is_admin": target.is_admin, "permissions": await _permission_rows(request, username)}


USERNAME = Field("username")
ENDPOINTS = (
    Endpoint("users/create", ("POST",), create, (USERNAME, Field("password"))),
    Endpoint("users/get", ("GET",), get, (USERNAME,)),
    Endpoint("users/current", ("GET",), current_user),
    Endpoint("users/update-password", ("PATCH",), update_password, (
        USERNAME, Field("password"), Field("current_password"),
    )),
    Endpoint("users/update-admin", ("PATCH",), update_admin, (USERNAME, Field("is_admin", BOOL))),
    Endpoint("users/delete", ("DELETE",), delete, (USERNAME,)),
    Endpoint("users/list", ("GET",), list_users),
    Endpoint("users/current/permissions", ("GET",), current_permissions, version="3.0"),
    Endpoint("users/permissions/list", ("GET",), list_permissions, (USERNAME,), version="3.0"),
)
