"""Authorization's per-worker state and the per-request caller, for handlers and the web UI."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tracking_core.authz.audit import AuditSink
from tracking_core.authz.caller import Caller, CallerCache
from tracking_core.authz.locate import Locator, Missing, Resource
from tracking_core.authz.permissions import Permission
from tracking_core.authz.visibility import Visibility
from tracking_core.errors import ErrorCode, MlflowError
from tracking_core.settings import CoreSettings
from tracking_core.store.database import Database


@dataclass(frozen=True)
class Authz:
    config: CoreSettings
    db: Database
    callers: CallerCache
    locator: Locator
    audit: AuditSink
    routes: Mapping[web.AbstractRoute, Any]  # what each route needs: authz.guard.Route


AUTHZ = web.AppKey("authz", Authz)
CALLER = web.RequestKey("authz_caller", Caller)
# What the request was about, for its audit record: (resource type, id).
RESOURCE = web.RequestKey("authz_resource", tuple)
# A line for the audit record, e.g. "grant READ on experiment 3 to bob" (never a secret).
DETAIL = web.RequestKey("authz_detail", str)


def enabled(request: web.Request) -> bool:
    return AUTHZ in request.app


async def current(request: web.Request) -> Caller | None:
    """The caller of this request (loaded once), or None when authorization is off."""
    if (found := request.get(CALLER)) is not None:
        return found
    az = request.app.get(AUTHZ)
    if az is None:
        return None
    # The identity headers name the caller (identity.identify reads the same headers).
    loaded = await az.callers.load(request.headers)
    request[CALLER] = loaded
    return loaded


async def visible(request: web.Request) -> Visibility | None:
    """Pass to the store's search functions as `visible=`: None lets everything through."""
    found = await current(request)
    return None if found is None else found.visibility()


def denied(message: str) -> MlflowError:
    return MlflowError(ErrorCode.PERMISSION_DENIED, message)


def require(caller: Caller, resource: Resource | Missing, need: Permission) -> None:
    # A Missing run or logged model: only admins learn that it does not exist.
    allowed = caller.is_admin if resource.__class__ is Missing else caller.permission(*resource).allows(need)
    if not allowed:
        who = caller.subject or "an unauthenticated caller"
        raise denied(f"Permission denied: {who} needs {need.name} on {resource[0]} '{resource[1]}'.")


def require_admin(caller: Caller | None) -> None:
    if caller is not None and not caller.is_admin:
        raise denied("Permission denied: only administrators may do this.")
