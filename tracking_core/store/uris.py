"""Artifact URIs the store records: a root plus path parts.

Its own module so that the request path (runs, experiments, models) does not import
`store.schema`, which brings Alembic (about a tenth of a worker's start-up) for migrations only
the supervisor runs.
"""

from __future__ import annotations


def join_uri(root: str, *parts: str) -> str:
    """Append path parts to an artifact root, which may be a URI ("mlflow-artifacts:/") or a path."""
    return "/".join([root.rstrip("/"), *parts]) if not root.endswith(":/") else root + "/".join(parts)
