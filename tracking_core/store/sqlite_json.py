"""SQL spellings, for SQLite, of the pieces of a JSON message: objects, optional fields, ordered lists.

The run and registry read paths (run_json.py, registry_json.py) have SQLite write their messages
as JSON text. `json_quote` and `json_object` escape exactly as orjson does, which is what lets
those paths match the Python renderings byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence


def json_object(fields: Sequence[tuple[str, str]]) -> str:
    """An object with a member per (name, SQL expression), in that order."""
    return "json_object(" + ", ".join(f"'{name}', {expr}" for name, expr in fields) + ")"


def open_object(*fields: tuple[str, str]) -> str:
    """`json_object(fields)` still open for more members: one call is a third cheaper than quoting
    and joining each member. Only the closing brace goes, as the last member's value must be a
    string or a number, never an object."""
    return f"rtrim({json_object(fields)}, '}}')"


def member_if_set(name: str, expr: str) -> str:
    """`,"name":value` for an open object, only when the value is neither NULL nor "" (what
    `if value:` skips in Python)."""
    return f"""CASE WHEN {expr} <> '' THEN ',"{name}":' || json_quote({expr}) ELSE '' END"""


def ordered_list(item: str, source: str) -> str:
    """The JSON array of `item` over `source` (a FROM ... ORDER BY ... clause), or NULL when it
    is empty. The ordered inner SELECT fixes the order group_concat sees."""
    return f"(SELECT '[' || group_concat(item, ',') || ']' FROM (SELECT {item} AS item {source}))"


def member_list(name: str, item: str, source: str) -> str:
    """`,"name":[...]` for an open object, left out when the list is empty (as MLflow does)."""
    return f"""coalesce(',"{name}":' || {ordered_list(item, source)}, '')"""
