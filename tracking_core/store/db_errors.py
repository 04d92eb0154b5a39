"""Which database failures may pass by themselves, and which the database will always refuse.

A transient failure (a busy or locked database, a lost connection, an exhausted pool, a server
shutting down) is answered 503 TEMPORARILY_UNAVAILABLE, which the mlflow client retries. A query
the database refuses for its own shape or values (an expression tree too deep, a pattern too
complex, a number out of range) will fail the same way every time: retrying it only repeats an
expensive failure, so it is the client's 400 INVALID_PARAMETER_VALUE. Anything else stays a 500.
"""

from __future__ import annotations

import enum

import sqlalchemy as sa


class Failure(enum.Enum):
    TRANSIENT = "transient"
    REFUSED = "refused"
    OTHER = "other"


# SQLite reports both kinds as OperationalError; the message is all that tells them apart.
_SQLITE_TRANSIENT = ("database is locked", "database table is locked", "unable to open database",
                     "disk i/o error", "database is busy")
_SQLITE_REFUSED = ("expression tree is too large", "too many sql variables", "pattern too complex",
                   "parser stack overflow", "string or blob too big", "too many terms", "too many columns",
                   "integer overflow", "too large to convert")

# PostgreSQL SQLSTATE classes: 08 connection, 40 serialisation/deadlock, 53 out of resources,
# 57 operator intervention (shutdown, statement timeout), 55P03 lock not available.
_PG_TRANSIENT_PREFIXES = ("08", "40", "53", "57", "55P03")
# 22 data exception (numeric out of range, invalid regex), 54 program limit (statement too complex).
_PG_REFUSED_PREFIXES = ("22", "54")

# MySQL/MariaDB error numbers: lock wait timeout, deadlock, too many connections, server gone away,
# lost connection, cannot connect, server shutting down.
_MYSQL_TRANSIENT = {1040, 1053, 1205, 1213, 2002, 2003, 2006, 2013, 2055}
# Out of range, regex errors, thread stack overrun (a too deeply nested expression).
_MYSQL_REFUSED = {1139, 1264, 1436, 1690, 3685, 3686, 3692, 3699}


def classify(exc: BaseException) -> Failure:
    """Sort a SQLAlchemy (or driver) exception into transient, refused or other."""
    if isinstance(exc, (sa.exc.TimeoutError, sa.exc.InterfaceError, ConnectionError, TimeoutError)):
        return Failure.TRANSIENT
    if isinstance(exc, OverflowError):  # a Python int the driver cannot bind
        return Failure.REFUSED
    if not isinstance(exc, sa.exc.DBAPIError):
        return Failure.OTHER
    if exc.connection_invalidated:
        return Failure.TRANSIENT
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(sqlstate, str) and sqlstate:
        if sqlstate.startswith(_PG_TRANSIENT_PREFIXES):
            return Failure.TRANSIENT
        if sqlstate.startswith(_PG_REFUSED_PREFIXES):
            return Failure.REFUSED
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):
        if args[0] in _MYSQL_TRANSIENT:
            return Failure.TRANSIENT
        if args[0] in _MYSQL_REFUSED:
            return Failure.REFUSED
    message = str(orig).lower()
    if any(text in message for text in _SQLITE_TRANSIENT):
        return Failure.TRANSIENT
    if any(text in message for text in _SQLITE_REFUSED):
        return Failure.REFUSED
    if isinstance(exc, sa.exc.DataError):
        return Failure.REFUSED
    # Other operational trouble (a server restarting, a file system hiccup) keeps the old answer:
    # retry later, not a client error.
    return Failure.TRANSIENT if isinstance(exc, sa.exc.OperationalError) else Failure.OTHER
