"""SQL fragments shared by the per-entity search builders."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement


def compare(column: ColumnElement[Any], comparator: str, value: object) -> ColumnElement[bool]:
    """`column <comparator> value` for a validated comparator (see rules.py).

    `.like()` is case-sensitive because the engine turns on `case_sensitive_like` for SQLite and the
    MySQL columns use a binary collation; `.ilike()` lowers both sides where there is no ILIKE.
    """
    match comparator:
        case "=":
            return column == value
        case "!=":
            return column != value
        case "<":
            return column < value
        case "<=":
            return column <= value
        case ">":
            return column > value
        case ">=":
            return column >= value
        case "LIKE":
            return column.like(value)
        case "ILIKE":
            return column.ilike(value)
        case "IN":
            return column.in_(value)  # type: ignore[arg-type]
        case "NOT IN":
            return column.not_in(value)  # type: ignore[arg-type]
    raise AssertionError(f"comparator {comparator!r} should have been rejected by the rules")


def key_value_test(
    link: ColumnElement[bool], key_column: ColumnElement[Any], key: str, value_column: ColumnElement[Any],
    comparator: str, value: object,
) -> ColumnElement[bool]:
    """A condition on an entity's key/value child rows (tags, params), `link` tying a row to the
    entity: a row with `key` whose value passes `comparator` exists, so `!=` never matches an
    entity without the key; IS NULL / IS NOT NULL ask only whether the key is there."""
    exists = sa.exists().where(link, key_column == key)
    if comparator == "IS NULL":
        return sa.not_(exists)
    if comparator == "IS NOT NULL":
        return exists
    return exists.where(compare(value_column, comparator, value))


def direction(column: ColumnElement[Any], ascending: bool) -> ColumnElement[Any]:
    return column.asc() if ascending else column.desc()


def missing_last(missing: ColumnElement[bool]) -> ColumnElement[int]:
    """A sort term putting rows where `missing` holds after the others, whatever the direction.

    Backends disagree on where NULLs sort (and MySQL has no NULLS LAST), so it is spelled out.
    """
    return sa.case((missing, 1), else_=0)
