"""`trackgate roles`: named sets of grants; members are assigned, or belong by group name."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

from gateway import config as configuration
from gateway.cli_grants import PERMISSIONS, TYPES, in_transaction
from gateway.cli_users import UserError, add_store_argument, run


def add_roles_arguments(parser: argparse.ArgumentParser) -> None:
    """Roles: grants shared by their members (an SSO group is the role of the same name)."""
    sub = parser.add_subparsers(dest="roles_command", required=True, metavar="COMMAND")
    commands: list[argparse.ArgumentParser] = []

    def command(
        name: str, help_text: str, action: Callable[..., Awaitable[str]], *args: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        for arg in args:
            p.add_argument(arg)
        p.set_defaults(handler=lambda a: run(a, action))
        commands.append(p)
        return p

    command("list", "List roles with their grants and members.", _list)
    command("create", "Create a role.", _create, "role").add_argument("--description")
    command("delete", "Delete a role (its grants and memberships go with it).", _delete, "role")
    grant = command("grant", "Give a role a permission on a resource (id, name or *).", _grant, "role")
    grant.add_argument("resource_type", choices=TYPES)
    grant.add_argument("resource_pattern")
    grant.add_argument("permission", choices=PERMISSIONS, type=str.upper)
    revoke = command("revoke", "Remove a role's permission on a resource.", _revoke, "role")
    revoke.add_argument("resource_type", choices=TYPES)
    revoke.add_argument("resource_pattern")
    command("assign", "Make SUBJECT a member of a role.", _assign, "role", "subject")
    command("unassign", "Remove SUBJECT from a role.", _unassign, "role", "subject")
    for p in commands:
        add_store_argument(p)


async def _role_id(conn: Any, name: str) -> int:
    from tracking_core.store import roles
    from tracking_core.store.grants import WORKSPACE

    row = await roles.find(conn, WORKSPACE, name)
    if row is None:
        raise UserError(f"no role {name!r}")
    return int(row.id)


async def _list(config: configuration.Config, args: argparse.Namespace, engine: Any) -> str:
    from tracking_core.store import roles
    from tracking_core.store.grants import WORKSPACE

    lines = []
    async with engine.connect() as conn:
        for role in await roles.list_roles(conn, WORKSPACE):
            members = ", ".join(m["username"] for m in await roles.members(conn, role["id"])) or "-"
            grants = ", ".join(f"{p['permission']} {p['resource_type']} {p['resource_pattern']}"
                               for p in role["permissions"]) or "-"
            lines.append(f"{role['name']}\tgrants: {grants}\tmembers: {members}")
    return "\n".join(lines) if lines else "(no roles)"


async def _create(config: configuration.Config, args: argparse.Namespace, engine: Any) -> str:
    from tracking_core.store import roles
    from tracking_core.store.grants import WORKSPACE

    await in_transaction(engine, lambda c: roles.create(c, WORKSPACE, args.role, args.description))
    return f"Created role {args.role}."


async def _delete(config: configuration.Config, args: argparse.Namespace, engine: Any) -> str:
    from tracking_core.store import roles

    async def action(conn: Any) -> None:
        await roles.delete(conn, await _role_id(conn, args.role))

    await in_transaction(engine, action)
    return f"Deleted role {args.role}."


async def _grant(config: configuration.Config, args: argparse.Namespace, engine: Any) -> str:
    from tracking_core.store import roles

    async def action(conn: Any) -> None:
        rid = await _role_id(conn, args.role)
        await roles.add_permission(conn, rid, args.resource_type, args.resource_pattern, args.permission)

    await in_transaction(engine, action)
    return f"Role {args.role} has {args.permission} on {args.resource_type} {args.resource_pattern}."


async def _revoke(config: configuration.Config, args: argparse.Namespace, engine: Any) -> str:
    from tracking_core.store import roles

    async def action(conn: Any) -> None:
        rid = await _role_id(conn, args.role)
        for p in await roles.list_permissions(conn, rid):
            if (p["resource_type"], p["resource_pattern"]) == (args.resource_type, args.resource_pattern):
                await roles.remove_permission(conn, p["id"])
                return
        raise UserError(f"role {args.role} has no permission on {args.resource_type} {args.resource_pattern}")

    await in_transaction(engine, action)
    return f"Removed role {args.role}'s permission on {args.resource_type} {args.resource_pattern}."


async def _assign(config: configuration.Config, args: argparse.Namespace, engine: Any) -> str:
    from tracking_core.store import roles

    async def action(conn: Any) -> None:
        await roles.assign(conn, args.subject, await _role_id(conn, args.role))

    await in_transaction(engine, action)
    return f"{args.subject} is a member of {args.role}."


async def _unassign(config: configuration.Config, args: argparse.Namespace, engine: Any) -> str:
    from tracking_core.store import roles

    async def action(conn: Any) -> None:
        await roles.unassign(conn, args.subject, await _role_id(conn, args.role))

    await in_transaction(engine, action)
    return f"{args.subject} is no longer a member of {args.role}."
