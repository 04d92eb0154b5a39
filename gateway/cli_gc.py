"""`trackgate gc`: permanently remove deleted runs and experiments, with their artifacts."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from gateway import config as configuration

# Where the database may come from besides the flag; never the built-in default, because
# garbage-collecting a database the operator did not name is the wrong kind of surprise.
_URI_ENV = ("TRACKGATE_BACKEND_STORE_URI", "MLFLOW_BACKEND_STORE_URI")


def _ids(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def add_gc_arguments(parser: argparse.ArgumentParser) -> None:
    """Permanently remove deleted runs and experiments, with their artifacts."""
    parser.add_argument(
        "--backend-store-uri",
        metavar="URI",
        help=f"Tracking database to clean (required; or set {' / '.join(_URI_ENV)}).",
    )
    parser.add_argument(
        "--older-than",
        metavar="DURATION",
        help="Only what was deleted at least this long ago, e.g. 30d or 1d2h3m4s.",
    )
    parser.add_argument(
        "--run-ids", metavar="IDS", default="", help="Comma-separated deleted runs to remove."
    )
    parser.add_argument(
        "--experiment-ids",
        metavar="IDS",
        default="",
        help="Comma-separated deleted experiments to remove, with all their runs.",
    )
    parser.add_argument(
        "--artifacts-destination",
        metavar="URI",
        help="Where the server keeps proxied (mlflow-artifacts:) artifacts; as for `trackgate server`.",
    )
    parser.add_argument(
        "--default-artifact-root",
        metavar="URI",
        help="The server's --default-artifact-root, if runs were written there directly.",
    )
    parser.set_defaults(handler=run_gc)


def run_gc(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from tracking_core.errors import MlflowError
    from tracking_core.gc import GcRequest, collect, older_than_ms
    from tracking_core.store.database import connect_failure

    uri = args.backend_store_uri or next((os.environ[n] for n in _URI_ENV if os.environ.get(n)), None)
    if not uri:
        print(
            "trackgate gc: refusing to run without --backend-store-uri (the database to clean).",
            file=sys.stderr,
        )
        return 2
    flags = {
        "backend_store_uri": uri,
        "artifacts_destination": args.artifacts_destination,
        "default_artifact_root": args.default_artifact_root,
    }
    try:
        older_than = older_than_ms(args.older_than) if args.older_than else None
        experiment_ids = [int(x) for x in _ids(args.experiment_ids)]
    except ValueError as exc:
        print(f"trackgate gc: {exc}", file=sys.stderr)
        return 2
    try:
        config = configuration.load(flags)
    except configuration.ConfigError as exc:
        print("trackgate gc: " + "\n  ".join(exc.problems), file=sys.stderr)
        return 2
    # Runs created while the server proxied artifacts keep mlflow-artifacts: URIs, whatever the
    # server's current mode: resolve them against the destination regardless.
    config = config.with_changes(serve_artifacts=True, artifacts_only=False)
    request = GcRequest(older_than, _ids(args.run_ids), experiment_ids)
    try:
        result = asyncio.run(collect(config, request, print))
    except MlflowError as exc:
        print(f"trackgate gc: nothing removed: {exc.message}", file=sys.stderr)
        return 2
    except sa.exc.OperationalError as exc:
        reason = connect_failure(exc.orig, config, uri)
        print(configuration.mask_uri(f"trackgate gc failed on {configuration.mask_uri(uri)}: {reason}"),
              file=sys.stderr)
        return 1
    except Exception as exc:  # the CLI's last line of defence: one clear line, no traceback
        print(f"trackgate gc failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(
        f"gc: removed {result.runs} run(s) ({result.metric_rows} metric rows) and "
        f"{result.experiments} experiment(s); {result.failures} kept because of errors."
    )
    return 1 if result.failures else 0
