"""The rule tables are data: a new entity plugs in its own table and reuses parser and checks.

The table here is shaped like the registry's model versions (spec §6.5), which later issues add.
"""

from __future__ import annotations

import pytest

from tracking_core.errors import ErrorCode, MlflowError
from tracking_core.search.rules import (
    LIST_COMPARATORS,
    NUMERIC_COMPARATORS,
    STRING_COMPARATORS,
    Condition,
    EntityRules,
    KeyRule,
    KeySpace,
    SortKey,
    integer,
    quoted_string,
    resolve_filter,
    resolve_order_by,
)

VERSIONS = EntityRules(
    types={
        "attribute": KeySpace(
            "attribute",
            keys={
                "name": KeyRule(STRING_COMPARATORS | LIST_COMPARATORS, quoted_string),
                "version_number": KeyRule(NUMERIC_COMPARATORS, integer, label="numeric attribute: {key}"),
                "source_path": KeyRule(STRING_COMPARATORS, quoted_string, sortable=False),
            },
            key_aliases={"version": "version_number"},
        ),
        "tag": KeySpace("tag", any_key=KeyRule(STRING_COMPARATORS, quoted_string), sortable=False),
    },
    type_aliases={"tag": "tag", "tags": "tag", "attribute": "attribute", "attributes": "attribute"},
)

RESOLVED = [
    ("string", "name = 'm'", [Condition("attribute", "name", "=", "m")]),
    ("list", "name IN ('a', 'b')", [Condition("attribute", "name", "IN", ("a", "b"))]),
    ("integer", "version_number >= 2", [Condition("attribute", "version_number", ">=", 2)]),
    (
        "integer in exponent form",
        "version_number = 1e2",
        [Condition("attribute", "version_number", "=", 100)],
    ),
    ("key alias", "attributes.version < 3", [Condition("attribute", "version_number", "<", 3)]),
    ("any tag key", "tags.`a b` LIKE 'x%'", [Condition("tag", "a b", "LIKE", "x%")]),
    (
        "conjunction",
        "name = 'm' AND tags.t != 'v'",
        [Condition("attribute", "name", "=", "m"), Condition("tag", "t", "!=", "v")],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [row[1:] for row in RESOLVED], ids=[row[0] for row in RESOLVED]
)
def test_resolve_filter(text: str, expected: list[Condition]) -> None:
    assert resolve_filter(text, VERSIONS) == expected


def test_resolve_order_by_keeps_duplicates_unless_asked() -> None:
    assert resolve_order_by(["version DESC", "name", "version_number"], VERSIONS) == [
        SortKey("attribute", "version_number", False),
        SortKey("attribute", "name", True),
        SortKey("attribute", "version_number", True),
    ]


REJECTED = [
    (
        "type the entity lacks",
        "metrics.x > 1",
        "Invalid entity type 'metrics'. Valid values are ['attribute', 'tag']",
    ),
    ("alias the entity drops", "run.name = 'x'", "Invalid entity type 'run'"),
    ("unknown key", "stage = 'x'", "Invalid attribute key 'stage' specified"),
    ("IS NULL nowhere", "tags.t IS NULL", "IS NULL / IS NOT NULL is not supported for 'tag' 't'"),
    (
        "list on a non-list key",
        "source_path IN ('a')",
        "Only ['name'] attributes support comparison with a list",
    ),
    ("fraction for an integer", "version_number = 1.5", "Expected an integer value for numeric attribute"),
]


@pytest.mark.parametrize(("text", "message"), [row[1:] for row in REJECTED], ids=[row[0] for row in REJECTED])
def test_rejected_filter(text: str, message: str) -> None:
    with pytest.raises(MlflowError) as caught:
        resolve_filter(text, VERSIONS)
    assert caught.value.code is ErrorCode.INVALID_PARAMETER_VALUE
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("order_by", "message"),
    [
        (["source_path"], "Invalid order_by key 'source_path'"),
        (["tags.t"], "Invalid order_by entity type 'tags'"),
    ],
    ids=["unsortable key", "unsortable type"],
)
def test_rejected_order_by(order_by: list[str], message: str) -> None:
    with pytest.raises(MlflowError) as caught:
        resolve_order_by(order_by, VERSIONS)
    assert message in caught.value.message
