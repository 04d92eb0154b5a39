"""`trackgate grants`: subjects' own permissions on experiments and registered models."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

from gateway import config as configuration
from gateway.cli_users import UserError, add_store_argument, run

TYPES = ("experiment", "registered_model")
PERMISSIONS = ("READ", "USE", "EDIT", "MANAGE", "DENY")


def add_grants_arguments(parser: argparse.ArgumentParser) -> None:
    """Permissions of users (any subject: password, SSO, token, certificate) on resources."""
    sub = parser.add_subparsers(dest="grants_command", required=True, metavar="COMMAND")
    listing = sub.add_parser("list", help="List grants (all, or one subject's).")
    listing.add_argument("--user", help="Only this subject's grants.")
    listing.set_defaults(handler=lambda a: run(a, _list))
    grant = sub.add_parser("grant", help="Give SUBJECT a permission on a resource (replaces an existing one).")
    grant.add_argument("subject")
    grant.add_argument("resource_type", choices=TYPES)
    grant.add_argument("resource_id", help="An experiment id, a registered model name, or * for all.")
    grant.add_argument("permission", choices=PERMISSIONS, type=str.upper)
    grant.set_defaults(handler=lambda a: run(a, _grant))
    revoke = sub.add_parser("revoke", help="Remove SUBJECT's grant on a resource.")
    revoke.add_argument("subject")
    revoke.add_argument("resource_type", choices=TYPES)
    revoke.add_argument("resource_id")
    revoke.set_defaults(handler=lambda a: run(a, _revoke))
    for p in (listing, grant, revoke):
        add_store_argument(p)


async def _list(config: configuration.Config, args: argparse.Namespace, engine: Any) -> str:
    from tracking_core.store import grants

    async with engine.connect() as conn:
        rows = await grants.list_grants(conn, args.user)
    lines = [f"{r['subject']}\t{r['resource_type']}\t{r['resource_id']}\t{r['permission']}" for r in rows]
    return "\n".join(lines) if lines else "(no grants)"


async def _grant(config: configuration.Config, args: argparse.Namespace, engine: Any) -> str:
    from tracking_core.store import grants

    async with engine.begin() as conn:
        await grants.grant(conn, args.subject, args.resource_type, args.resource_id, args.permission, replace=True)
    return (f"Granted {args.permission} on {args.resource_type} {args.resource_id} to {args.subject}; "
            "running servers apply it within seconds.")


async def _revoke(config: configuration.Config, args: argparse.Namespace, engine: Any) -> str:
    from tracking_core.store import grants

    await in_transaction(engine, lambda c: grants.revoke(c, args.subject, args.resource_type, args.resource_id))
    return f"Revoked {args.subject}'s grant on {args.resource_type} {args.resource_id}."


async def in_transaction(engine: Any, action: Callable[[Any], Awaitable[Any]]) -> Any:
    """`action` in one transaction; the store's refusals (not found, already exists) as UserError."""
    from tracking_core.errors import MlflowError

    try:
        async with engine.begin() as conn:
            return await action(conn)
    except MlflowError as exc:
        raise UserError(exc.message) from None
