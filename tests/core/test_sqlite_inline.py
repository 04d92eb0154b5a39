"""The inline SQLite connection stands in for AsyncConnection wherever the store uses one."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import tracking_core
from tracking_core.store.sqlite_inline import InlineConnection

# These two hold synchronous connections on purpose; everything else sees AsyncConnection's API.
SYNC_SIDE = {"sqlite_inline.py", "database.py"}
# Packages whose `conn` is something else: an SSH/FTP connection, or the importer's own engines
# (it never runs on the request path, so it never gets an inline connection).
OTHER_CONNECTIONS = {"artifacts", "importer"}
# Modules of the PostgreSQL write path: their connection is asyncpg's through SQLAlchemy, never inline SQLite.
POSTGRES_ONLY = {"pg_writes.py"}


def test_offers_every_connection_method_the_core_calls() -> None:
    root = Path(tracking_core.__file__).parent
    used: set[str] = set()
    for path in root.rglob("*.py"):
        if path.name in SYNC_SIDE | POSTGRES_ONLY or path.relative_to(root).parts[0] in OTHER_CONNECTIONS:
            continue
        used |= set(re.findall(r"\bconn\.(\w+)\(", path.read_text()))
    assert {"execute", "scalar", "scalars"} <= used
    missing = sorted(name for name in used if not hasattr(InlineConnection, name))
    assert not missing, f"InlineConnection lacks {missing}"
    for name in used:
        method = getattr(InlineConnection, name)
        assert inspect.iscoroutinefunction(method) or hasattr(method, "__wrapped__"), name
