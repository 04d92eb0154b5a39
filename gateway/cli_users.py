"""`trackgate users`: the basic-auth users kept in the tracking database."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from gateway import config as configuration
from tracking_core import user_rules


def add_store_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend-store-uri",
        dest="backend_store_uri",
        metavar="URI",
        default=None,
        help="Tracking database (default: TRACKGATE_BACKEND_STORE_URI / MLFLOW_BACKEND_STORE_URI / "
        "sqlite:///trackgate.db).",
    )
    parser.add_argument("--config", dest="config_file", metavar="FILE", help="TOML file with settings.")


def add_users_arguments(parser: argparse.ArgumentParser) -> None:
    """Basic-auth users in the tracking database (create, list, set-password, delete)."""
    sub = parser.add_subparsers(dest="users_command", required=True, metavar="COMMAND")
    create = sub.add_parser("create", help="Add a user; the password is read from stdin or prompted for.")
    create.add_argument("name")
    create.add_argument("--admin", action="store_true", help="Make the user an administrator.")
    create.set_defaults(handler=lambda a: run(a, _create))
    listing = sub.add_parser("list", help="List users (names, admin flag, dates; never hashes).")
    listing.set_defaults(handler=lambda a: run(a, _list))
    setpw = sub.add_parser("set-password", help="Change a user's password (stdin or prompt).")
    setpw.add_argument("name")
    setpw.set_defaults(handler=lambda a: run(a, _set_password))
    delete = sub.add_parser("delete", help="Remove a user.")
    delete.add_argument("name")
    delete.set_defaults(handler=lambda a: run(a, _delete))
    for p in (create, listing, setpw, delete):
        add_store_argument(p)


def load_store_config(args: argparse.Namespace) -> configuration.Config:
    flags = {
        "backend_store_uri": args.backend_store_uri,
        "token_signing_key_file": getattr(args, "token_signing_key_file", None),
    }
    return configuration.load(flags, config_file=args.config_file)


def read_password() -> str:
    """From stdin when it is not a terminal (scripts: `echo pw | trackgate users create ...`),
    else prompted for twice without echo."""
    if not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password (again): ") != password:
            raise UserError("the passwords differ")
    return check_password(password)


def check_name(name: str) -> str:
    try:
        return user_rules.check_name(name)
    except user_rules.CredentialRuleError as exc:
        raise UserError(str(exc)) from None


def check_password(password: str) -> str:
    try:
        return user_rules.check_password(password)
    except user_rules.CredentialRuleError as exc:
        raise UserError(str(exc)) from None


class UserError(Exception):
    """A problem the user can fix; printed as one line, exit code 1."""


Action = Callable[[configuration.Config, argparse.Namespace, Any], Awaitable[str]]


def run(args: argparse.Namespace, action: Action) -> int:
    try:
        config = load_store_config(args)
    except configuration.ConfigError as exc:
        print("trackgate: " + "\n  ".join(exc.problems), file=sys.stderr)
        return 2
    try:
        print(asyncio.run(_with_engine(config, args, action)))
    except UserError as exc:
        print(f"trackgate: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the CLI's last line of defence: one line, no traceback
        print(f"trackgate: {type(exc).__name__}: {configuration.mask_uri(str(exc))}", file=sys.stderr)
        return 1
    return 0


async def _with_engine(config: configuration.Config, args: argparse.Namespace, action: Action) -> str:
    from tracking_core.store import schema
    from tracking_core.store.database import create_engine

    await schema.prepare(config)  # a new database is initialised; an old one is refused
    engine = create_engine(config.with_changes(db_pool_size=1, db_max_overflow=0))
    try:
        return await action(config, args, engine)
    finally:
        await engine.dispose()


def _now() -> int:
    return int(time.time() * 1000)


async def _create(config: configuration.Config, args: argparse.Namespace, engine: Any) -> str:
    import sqlalchemy as sa

    from gateway.auth.passwords import hash_password
    from tracking_core.store.tables import users

    check_name(args.name)
    hashed = await asyncio.to_thread(hash_password, read_password())
    try:
        async with engine.begin() as conn:
            await conn.execute(
                users.insert().values(
                    name=args.name,
                    password_hash=hashed,
                    is_admin=args.admin,
                    created_time=_now(),
                    password_changed_time=_now(),
                )
            )
    except sa.exc.IntegrityError:
        raise UserError(f"user {args.name!r} already exists (use users set-password)") from None
    return f"Created user {args.name}" + (" (admin)." if args.admin else ".")


async def _list(config: configuration.Config, args: argparse.Namespace, engine: Any) -> str:
    import sqlalchemy as sa

    from tracking_core.store.tables import users

    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(users.c.name, users.c.is_admin, users.c.created_time).order_by(users.c.name)
            )
        ).all()
    lines = [
        f"{r.name}\t{'admin' if r.is_admin else 'user'}\t"
        f"created {time.strftime('%Y-%m-%d', time.gmtime(r.created_time / 1000))}"
        for r in rows
    ]
    return "\n".join(lines) if lines else "(no users)"


async def _set_password(config: configuration.Config, args: argparse.Namespace, engine: Any) -> str:

    from gateway.auth.passwords import hash_password
    from tracking_core.store.tables import users

    hashed = await asyncio.to_thread(hash_password, read_password())
    async with engine.begin() as conn:
        result = await conn.execute(
            users.update()
            .where(users.c.name == args.name)
            .values(password_hash=hashed, password_changed_time=_now())
        )
    if result.rowcount == 0:
        raise UserError(f"no user {args.name!r}")
    return f"Changed the password of {args.name}; running servers accept only the new one within seconds."


async def _delete(config: configuration.Config, args: argparse.Namespace, engine: Any) -> str:

    from tracking_core.store.tables import users

    async with engine.begin() as conn:
        result = await conn.execute(users.delete().where(users.c.name == args.name))
    if result.rowcount == 0:
        raise UserError(f"no user {args.name!r}")
    return f"Deleted user {args.name}."
