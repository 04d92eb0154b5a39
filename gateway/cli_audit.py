"""`trackgate audit`: read the audit log (newest first), or prune it to the retention period."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from gateway import config as configuration
from gateway.cli_users import UserError, add_store_argument, run
from tracking_core.durations import parse_duration


def add_audit_arguments(parser: argparse.ArgumentParser) -> None:
    """The audit log: who changed what, permission changes, downloads (`--prune` to trim it)."""
    parser.add_argument("--since", default="1d", help="How far back, e.g. 90m, 12h, 1d, 30d (default 1d).")
    parser.add_argument("--subject", help="Only this subject's records.")
    parser.add_argument("--action", help="Only this action, e.g. 'POST /api/2.0/mlflow/runs/delete'.")
    parser.add_argument("--max-results", type=int, default=1000, help="At most this many records (default 1000).")
    parser.add_argument("--json", action="store_true", help="One JSON object per line.")
    parser.add_argument("--prune", action="store_true",
                        help="Delete records older than audit_retention_days instead of listing.")
    add_store_argument(parser)
    parser.set_defaults(handler=lambda a: run(a, _prune if a.prune else _show))


def _line(r: dict[str, Any]) -> str:
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r["time_ms"] / 1000))
    resource = f"{r['resource_type']}:{r['resource_id']}" if r["resource_type"] else "-"
    return "\t".join(str(x) for x in (
        when, r["subject"] or "-", r["auth_method"] or "-", r["client"] or "-", r["action"], resource,
        f"{r['outcome']} {r['status']}", r["detail"] or "",
    )).rstrip()


async def _show(config: configuration.Config, args: argparse.Namespace, engine: Any) -> str:
    from tracking_core.store import audit
    from tracking_core.store.database import Database

    try:
        since = parse_duration(args.since)
    except ValueError:
        raise UserError(f"--since: {args.since!r} is not a duration such as 90m, 12h or 7d") from None
    since_ms = int((time.time() - since.total_seconds()) * 1000)
    records = await audit.query(Database(engine), since_ms, args.subject, args.action, args.max_results)
    if args.json:
        return "\n".join(json.dumps(r) for r in records)
    return "\n".join(_line(r) for r in records) if records else "(no records)"


async def _prune(config: configuration.Config, args: argparse.Namespace, engine: Any) -> str:
    from tracking_core.store import audit
    from tracking_core.store.database import Database

    cutoff = int((time.time() - config.audit_retention_days * 86400) * 1000)
    removed = await audit.prune(Database(engine), cutoff)
    return f"Removed {removed} audit records older than {config.audit_retention_days} days."
