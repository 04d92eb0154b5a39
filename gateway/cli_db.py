"""`trackgate db`: explicit schema migrations, the only way an existing database changes shape."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from gateway import config as configuration


def add_db_arguments(parser: argparse.ArgumentParser) -> None:
    """Database schema commands (upgrade)."""
    sub = parser.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    upgrade = sub.add_parser("upgrade", help="Migrate a tracking database to the schema this trackgate needs.")
    upgrade.add_argument("uri", metavar="URI", help="SQLAlchemy URI, e.g. sqlite:///trackgate.db")
    upgrade.set_defaults(handler=run_upgrade)


def run_upgrade(args: argparse.Namespace) -> int:
    from tracking_core.store import schema

    # Only the database's connection settings come from the environment: the URI is the argument,
    # and a server setting (auth, ports) has no business failing a migration.
    connection = [s for s in configuration.SETTINGS if s.name.startswith(("mysql_ssl_", "db_"))]
    env = {n: os.environ[n] for s in connection for n in s.env_names if n in os.environ}
    try:
        config = configuration.load({"backend_store_uri": args.uri}, env=env)
    except configuration.ConfigError as exc:
        print("trackgate: " + "\n  ".join(exc.problems), file=sys.stderr)
        return 2
    masked = configuration.mask_uri(args.uri)
    try:
        before, after = asyncio.run(schema.upgrade(config, args.uri))
    except schema.SchemaError as exc:  # names the database and says why
        print(f"trackgate: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the CLI's last line of defence: one clear line, no traceback
        print(f"trackgate: upgrading {masked} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if before == after:
        print(f"{masked} is already at schema revision {after}.")
    else:
        print(f"Upgraded {masked} from revision {before or '(empty)'} to {after}.")
    return 0
