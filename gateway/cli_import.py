"""`trackgate import-mlflow`: move an MLflow installation (database or ./mlruns) into trackgate."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

from gateway import config as configuration


def add_import_arguments(parser: argparse.ArgumentParser) -> None:
    """Import an MLflow tracking database or ./mlruns folder (experiments, runs, metrics, models, registry)."""
    parser.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="SOURCE",
        help="MLflow backend store URI (sqlite:///mlflow.db, postgresql://..., mysql://...) or a ./mlruns path.",
    )
    parser.add_argument(
        "--to",
        dest="target",
        required=True,
        metavar="URI",
        help="trackgate tracking database; created if empty, resumed if an earlier import stopped.",
    )
    parser.add_argument(
        "--auth-db",
        dest="auth_db",
        metavar="URI",
        default=None,
        help="MLflow's basic-auth database (basic_auth.ini database_uri): users keep their passwords, "
        "permissions become grants.",
    )
    parser.add_argument("--dry-run", action="store_true", help="Check and count what would be imported; write nothing.")
    parser.add_argument("--quiet", action="store_true", help="No progress bar.")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=10_000,
        metavar="ROWS",
        help="Rows per read and per committed write (memory stays proportional to it).",
    )
    parser.set_defaults(handler=run_import)


def _config(target: str) -> configuration.Config:
    # As `db upgrade`: only connection settings come from the environment, never server ones.
    connection = [s for s in configuration.SETTINGS if s.name.startswith(("mysql_ssl_", "db_"))]
    env = {n: os.environ[n] for s in connection for n in s.env_names if n in os.environ}
    return configuration.load({"backend_store_uri": target}, env=env)


def run_import(args: argparse.Namespace) -> int:
    from tracking_core.importer.detect import ImportRefused
    from tracking_core.importer.progress import Progress
    from tracking_core.importer.run import import_mlflow

    try:
        config = _config(args.target)
    except configuration.ConfigError as exc:
        print("trackgate: " + "\n  ".join(exc.problems), file=sys.stderr)
        return 2
    if args.batch_size < 1:
        print("trackgate: --batch-size must be at least 1", file=sys.stderr)
        return 2
    enabled = False if args.quiet else None
    started = time.monotonic()
    try:
        report = asyncio.run(
            import_mlflow(
                args.source,
                config,
                batch_size=args.batch_size,
                dry_run=args.dry_run,
                progress=lambda totals: Progress(totals, enabled=enabled),
                auth_db=args.auth_db,
            )
        )
    except ImportRefused as exc:
        print(f"trackgate: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the CLI's last line of defence: one clear line, no traceback
        print(f"trackgate: import failed: {type(exc).__name__}: {configuration.mask_uri(str(exc))}", file=sys.stderr)
        return 1
    target = configuration.mask_uri(args.target)
    verb = "Would import" if report.dry_run else "Imported"
    print(f"{verb} from {report.source} (MLflow schema {report.revision}) into {target}:")
    for entity, count in report.counts.items():
        if count:
            print(f"  {entity.replace('_', ' ')}: {count:,}")
    for what, count in report.auth_counts.items():
        print(f"  {what}: {count:,}")
    runs = report.metric_runs
    if runs.resumed or runs.complete or runs.not_yet:
        # A rerun: what the target held already, and what was (or would be) topped up.
        done = "to resume or catch up, {:,} to copy" if report.dry_run else "resumed or caught up, {:,} copied"
        print(
            f"  (metric histories: {runs.complete:,} runs complete already, {runs.resumed:,} "
            + done.format(runs.copied)
            + f", {runs.not_yet:,} left for the next import)"
        )
    if not report.dry_run:
        elapsed = time.monotonic() - started
        points = report.counts.get("metrics", 0)
        print(f"Done in {elapsed:.1f} s ({points / max(elapsed, 1e-9):,.0f} metric points/s).")
    return 0
