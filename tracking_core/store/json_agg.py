"""`key_value_list(key, value)`: an aggregate giving the rows' {"key", "value"} pairs as one JSON array.

A page of 1,000 entities then carries its tags in the same query as the rows, instead of a
second query with a 1,000-item IN list. SQLAlchemy has no portable JSON aggregate, so each
backend gets its own spelling; elsewhere (MSSQL) it compiles to NULL and `SUPPORTED` says to
read the tags with a separate query. `parse` returns None when the text is not a whole array
(MariaDB builds JSON_ARRAYAGG on GROUP_CONCAT, which stops at group_concat_max_len), so the
caller reads those tags directly too.
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

SUPPORTED = frozenset({"sqlite", "postgresql", "mysql", "mariadb"})


class key_value_list(FunctionElement[str]):
    type = sa.Text()
    inherit_cache = True
    name = "key_value_list"


def _pair(element: key_value_list, compiler: SQLCompiler, **kw: Any) -> tuple[str, str]:
    key, value = (compiler.process(c, **kw) for c in element.clauses)
    return key, value


@compiles(key_value_list, "sqlite")
def _sqlite(element: key_value_list, compiler: SQLCompiler, **kw: Any) -> str:
    key, value = _pair(element, compiler, **kw)
    return f"json_group_array(json_object('key', {key}, 'value', {value}))"


@compiles(key_value_list, "postgresql")
def _postgresql(element: key_value_list, compiler: SQLCompiler, **kw: Any) -> str:
    key, value = _pair(element, compiler, **kw)
    return f"json_agg(json_build_object('key', {key}, 'value', {value}))"


@compiles(key_value_list, "mysql")
@compiles(key_value_list, "mariadb")
def _mysql(element: key_value_list, compiler: SQLCompiler, **kw: Any) -> str:
    key, value = _pair(element, compiler, **kw)
    return f"JSON_ARRAYAGG(JSON_OBJECT('key', {key}, 'value', {value}))"


@compiles(key_value_list)
def _other(element: key_value_list, compiler: SQLCompiler, **kw: Any) -> str:
    return "NULL"


def parse(value: str | list[dict[str, str]] | None) -> list[dict[str, str]] | None:
    """The pairs sorted by key ([] for none), or None if the array was cut short."""
    if value is None:
        return []  # PostgreSQL and MySQL aggregate zero rows to NULL
    if isinstance(value, list):
        pairs = value  # asyncpg hands json over already decoded
    else:
        try:
            pairs = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
    return sorted(pairs, key=lambda pair: pair["key"])
