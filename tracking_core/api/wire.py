"""MLflow's protobuf-JSON conventions, in one place.

Each endpoint declares its request message as a tuple of `Field`s; `parse_body` (JSON) and
`parse_query` (GET query strings) turn what the client sent into plain Python values:
int64 as number or numeric string (range-checked: a value a 64-bit column cannot hold is the
client's mistake, not a 500), doubles with "NaN"/"Infinity" strings, enums by name or number
(an unknown name counts as unset, as in MLflow), camelCase accepted as well as snake_case but
not both, unknown fields ignored. JSON types are held as strictly as MLflow's protobuf parsing
holds them: a number where a string belongs, or a lone value where a list belongs, is 400
INVALID_PARAMETER_VALUE, never silently converted. The same declarations generate the
OpenAPI document (`tracking_core.api.openapi`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import orjson
from multidict import MultiMapping

from tracking_core.errors import invalid

STRING = "string"
INT64 = "int64"
INT32 = "int32"
DOUBLE = "double"
BOOL = "bool"
ENUM = "enum"
MESSAGE = "message"


@dataclass(frozen=True)
class Field:
    name: str
    kind: str = STRING
    required: bool = False
    repeated: bool = False
    enum: type[Enum] | None = None
    enum_numbers: Mapping[int, Enum] | None = None
    fields: tuple[Field, ...] = ()
    # A second accepted name; MLflow clients send run_uuid next to run_id.
    alias: str | None = None
    # The camelCase spelling when it differs from `name`; computed once (parsing is a hot path:
    # a log-batch carries up to a thousand metric messages).
    camel: str | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        head, *rest = self.name.split("_")
        camel = head + "".join(p.title() for p in rest)
        object.__setattr__(self, "camel", camel if camel != self.name else None)


def _missing(name: str) -> Exception:
    return invalid(
        f"Missing value for required parameter '{name}'. "
        "See the API docs for more information about request parameters."
    )


def _shown(value: Any) -> str:
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= 100 else text[:100] + "..."


def _bad(name: str, value: Any) -> Exception:
    # MLflow's wording, so a client (or a person) sees the same message from either server.
    return invalid(
        f"Invalid value {_shown(value)} for parameter '{name}' supplied:  Hint: Value was of type "
        f"'{type(value).__name__}'. See the API docs for more information about request parameters."
    )


_RANGES = {INT64: (-(2**63), 2**63 - 1), INT32: (-(2**31), 2**31 - 1)}
_INTEGER_TEXT = re.compile(r"\s*[-+]?\d{1,40}\s*")


def _integer(f: Field, value: Any) -> int:
    if isinstance(value, bool):
        raise _bad(f.name, value)
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)  # orjson reads integers past 64 bits as floats (1e30, 2**64)
    elif isinstance(value, str) and _INTEGER_TEXT.fullmatch(value):
        number = int(value)
    else:
        raise _bad(f.name, value)
    low, high = _RANGES[f.kind]
    if not low <= number <= high:
        bits = 64 if f.kind == INT64 else 32
        raise invalid(
            f"Invalid value {_shown(value)} for parameter '{f.name}' supplied: it is out of range for a "
            f"{bits}-bit integer ({low} to {high})."
        )
    return number


def _convert(f: Field, value: Any, from_query: bool) -> Any:
    if f.kind == STRING:
        if isinstance(value, str):
            return value
        raise _bad(f.name, value)
    if f.kind in (INT64, INT32):
        return _integer(f, value)
    if f.kind == DOUBLE:
        if isinstance(value, bool):
            raise _bad(f.name, value)
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str) and len(value) <= 400:
            try:
                return float(value)  # accepts "NaN", "Infinity", "-Infinity" and numeric strings
            except ValueError:
                pass
        raise _bad(f.name, value)
    if f.kind == BOOL:
        if isinstance(value, bool):
            return value
        # Only a query string spells booleans as text; MLflow refuses "true" in a JSON body.
        if from_query and isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _bad(f.name, value)
    if f.kind == ENUM:
        assert f.enum is not None
        if isinstance(value, str):
            try:
                return f.enum[value.upper()] if not value.isdigit() else (f.enum_numbers or {}).get(int(value))
            except (KeyError, ValueError):
                return None
        if isinstance(value, int) and not isinstance(value, bool):
            return (f.enum_numbers or {}).get(value)
        return None
    if f.kind == MESSAGE:
        if from_query or not isinstance(value, dict):
            raise _bad(f.name, value)
        return parse_message(f.fields, value)
    raise AssertionError(f"unknown field kind {f.kind}")


def _item(f: Field, value: Any) -> Any:
    """One element of a repeated JSON field. MLflow lets numbers through as elements of a
    repeated string (`experiment_ids: [5]` searches experiment "5"), so that one leniency stays."""
    if f.kind == STRING and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return _convert(f, value, False)


def _raw(f: Field, data: Mapping[str, Any]) -> Any:
    value = data.get(f.name)
    if f.camel is not None and (camel_value := data.get(f.camel)) is not None:
        if value is not None:
            raise invalid(f"Field '{f.name}' was given twice, as '{f.name}' and '{f.camel}'.")
        value = camel_value
    if value is None and f.alias is not None:
        value = data.get(f.alias)
    return value


def parse_message(fields: tuple[Field, ...], data: Mapping[str, Any]) -> dict[str, Any]:
    """Parse a JSON object into {field name: value}; absent fields are None, or [] if repeated."""
    out: dict[str, Any] = {}
    for f in fields:
        raw = _raw(f, data)
        if f.repeated:
            if raw is None:
                items: list[Any] = []
            elif isinstance(raw, list):
                items = [_item(f, item) for item in raw]
            else:
                raise _bad(f.name, raw)  # MLflow refuses a lone value where a list belongs
            if f.required and not items:
                raise _missing(f.name)
            out[f.name] = items
            continue
        value = None if raw is None else _convert(f, raw, False)
        if f.required and (value is None or value == ""):
            raise _missing(f.name)
        out[f.name] = value
    return out


def parse_query(fields: tuple[Field, ...], query: MultiMapping[str]) -> dict[str, Any]:
    """Parse a GET query string: repeated fields are repeated keys, numbers arrive as strings."""
    out: dict[str, Any] = {}
    for f in fields:
        names = [n for n in dict.fromkeys((f.name, f.camel, f.alias)) if n and n in query]
        if f.repeated:
            items = [_convert(f, v, True) for n in names for v in query.getall(n)]
            if f.required and not items:
                raise _missing(f.name)
            out[f.name] = items
            continue
        value = _convert(f, query[names[0]], True) if names else None
        if f.required and (value is None or value == ""):
            raise _missing(f.name)
        out[f.name] = value
    return out


def page(field: str, items: list[Any], next_page_token: str | None) -> dict[str, Any]:
    """One page of a list response: the items unless there are none, the token only if more follow."""
    out: dict[str, Any] = {field: items} if items else {}
    if next_page_token:
        out["next_page_token"] = next_page_token
    return out


KEY_VALUE = (Field("key"), Field("value"))
