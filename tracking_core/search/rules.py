"""Per-entity search rules as data, and the one function that checks a parsed filter against them.

Each searchable entity (runs, experiments, and later registered models, model versions and logged
models) describes its identifier types, keys, comparators and value types in an `EntityRules`
table. `resolve_filter` and `resolve_order_by` turn parser output into `Condition`s and
`SortKey`s whose type and key are canonical (aliases resolved) and whose values are Python values
ready to bind, so the SQL builders never see raw syntax.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from tracking_core.errors import invalid
from tracking_core.search.parser import Identifier, Value, ValueKind, parse_filter, parse_order_by

STRING_COMPARATORS = frozenset({"=", "!=", "LIKE", "ILIKE"})
NUMERIC_COMPARATORS = frozenset({"=", "!=", "<", "<=", ">", ">="})
LIST_COMPARATORS = frozenset({"IN", "NOT IN"})
NULL_COMPARATORS = frozenset({"IS NULL", "IS NOT NULL"})

# A value parser gets the literal and a label naming what it is for ("metric", "tag", ...).
ValueParser = Callable[[Value, str], object]


def quoted_string(value: Value, label: str) -> str:
    if value.kind is not ValueKind.STRING:
        raise invalid(f"Expected a quoted string value for {label} (e.g. 'my-value'). Got value {value.text}")
    return value.value


def number(value: Value, label: str) -> float:
    if value.kind is not ValueKind.NUMBER:
        raise invalid(f"Expected numeric value type for {label}. Found {value.text}")
    # A float bind, so PostgreSQL does not cast a large literal to INTEGER before comparing.
    return float(value.value)


INT64_RANGE = (-(2**63), 2**63 - 1)


def integer(value: Value, label: str) -> int:
    """A whole number for an integer column (`1e12` is fine, `1.5` is not)."""
    parsed = number(value, label)
    if not parsed.is_integer():
        raise invalid(f"Expected an integer value for {label}. Found {value.text}")
    # int() of the literal keeps millisecond timestamps beyond 2**53 exact.
    try:
        whole = int(value.value)
    except ValueError:
        whole = int(parsed)
    # A literal no 64-bit column can hold would overflow inside the database driver (a 500).
    if not INT64_RANGE[0] <= whole <= INT64_RANGE[1]:
        raise invalid(f"Value {value.text} for {label} is out of range for a 64-bit integer.")
    return whole


@dataclass(frozen=True)
class KeyRule:
    """What one key accepts."""

    comparators: frozenset[str]
    parse: ValueParser
    sortable: bool = True
    label: str | None = None  # overrides the key space's label in value errors; `{key}` is filled in


# Integer attributes (times, version numbers): numeric comparators, errors naming the attribute.
INTEGER_ATTRIBUTE = KeyRule(NUMERIC_COMPARATORS, integer, label="numeric attribute: {key}")


@dataclass(frozen=True)
class KeySpace:
    """The keys of one identifier type: a fixed set (attributes) and/or any key (tags, metrics)."""

    label: str
    keys: Mapping[str, KeyRule] = field(default_factory=dict)
    any_key: KeyRule | None = None
    key_aliases: Mapping[str, str] = field(default_factory=dict)
    sortable: bool = True

    def field_for(self, key: str) -> KeyRule | None:
        return self.keys.get(key, self.any_key)


DEFAULT_TYPE_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "metric": "metric",
        "metrics": "metric",
        "param": "param",
        "params": "param",
        "parameter": "param",
        "parameters": "param",
        "tag": "tag",
        "tags": "tag",
        "attribute": "attribute",
        "attributes": "attribute",
        "attr": "attribute",
        "run": "attribute",
        "dataset": "dataset",
        "datasets": "dataset",
    }
)


@dataclass(frozen=True)
class EntityRules:
    types: Mapping[str, KeySpace]  # canonical type name -> its keys
    type_aliases: Mapping[str, str] = field(default_factory=lambda: DEFAULT_TYPE_ALIASES)
    bare_type: str = "attribute"  # the type of an identifier without a prefix
    unique_order_by: bool = False  # reject the same field twice in order_by (runs do, experiments don't)


@dataclass(frozen=True)
class Condition:
    type: str
    key: str
    comparator: str
    value: object  # str | int | float | tuple of those | None for IS [NOT] NULL


@dataclass(frozen=True)
class SortKey:
    type: str
    key: str
    ascending: bool


def _locate(identifier: Identifier, rules: EntityRules) -> tuple[str, str, KeySpace, KeyRule]:
    if identifier.type is None:
        type_ = rules.bare_type
    else:
        alias = rules.type_aliases.get(identifier.type.lower())
        if alias is None or alias not in rules.types:
            raise invalid(f"Invalid entity type '{identifier.type}'. Valid values are {list(rules.types)}")
        type_ = alias
    space = rules.types[type_]
    key = space.key_aliases.get(identifier.key, identifier.key)
    found = space.field_for(key) if key else None
    if found is None:
        valid = sorted({*space.keys, *space.key_aliases})
        raise invalid(f"Invalid {space.label} key '{identifier.key}' specified. Valid keys are '{valid}'")
    return type_, key, space, found


def _comparator_error(
    comparator: str, type_: str, key: str, space: KeySpace, found: KeyRule, rules: EntityRules
) -> Exception:
    if comparator in NULL_COMPARATORS:
        supporting = [
            f"{name}s"
            for name, other in rules.types.items()
            if any("IS NULL" in f.comparators for f in (*other.keys.values(), other.any_key) if f)
        ]
        only = f"only supported for {' and '.join(supporting)}, not" if supporting else "not supported"
        return invalid(f"IS NULL / IS NOT NULL is {only} for '{type_}' '{key}'")
    listing = sorted(k for k, f in space.keys.items() if "IN" in f.comparators)
    if comparator in LIST_COMPARATORS and listing:
        return invalid(
            f"Only {listing} {space.label}s support comparison with a list of quoted string values."
        )
    valid = sorted(found.comparators)
    return invalid(f"Invalid comparator '{comparator}' not one of '{valid}'")


def resolve_filter(filter_string: str | None, rules: EntityRules) -> list[Condition]:
    """Parse and validate a filter string; every returned condition is to hold."""
    conditions = []
    for comparison in parse_filter(filter_string):
        type_, key, space, found = _locate(comparison.identifier, rules)
        comparator = comparison.comparator
        if comparator not in found.comparators:
            raise _comparator_error(comparator, type_, key, space, found, rules)
        label = found.label.format(key=key) if found.label else space.label
        value: object = None
        if comparison.value is None:
            pass
        elif comparator in LIST_COMPARATORS:
            if comparison.value.kind is not ValueKind.LIST:
                raise invalid(
                    f"Expected a list of quoted string values for {label} (e.g. ('a', 'b')). "
                    f"Got value {comparison.value.text}"
                )
            value = tuple(found.parse(item, label) for item in comparison.value.items)
        else:
            value = found.parse(comparison.value, label)
        conditions.append(Condition(type_, key, comparator, value))
    return conditions


def resolve_order_by(order_by: Sequence[str] | None, rules: EntityRules) -> list[SortKey]:
    """Parse and validate order_by elements (tiebreaks are the caller's business)."""
    keys: list[SortKey] = []
    for text in order_by or ():
        clause = parse_order_by(text)
        type_, key, space, found = _locate(clause.identifier, rules)
        if not space.sortable:
            raise invalid(f"Invalid order_by entity type '{clause.identifier.type}' in '{text}'")
        if not found.sortable:
            raise invalid(f"Invalid order_by key '{clause.identifier.key}' in '{text}'")
        if rules.unique_order_by and any((k.type, k.key) == (type_, key) for k in keys):
            raise invalid(f"`order_by` contains duplicate fields: {list(order_by or ())}")
        keys.append(SortKey(type_, key, clause.ascending))
    return keys
