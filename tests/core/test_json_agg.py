"""json_agg.parse: what each backend's aggregate hands back, and a cut-short array."""

from __future__ import annotations

import pytest

from tracking_core.store.json_agg import parse

PAIRS = [{"key": "b", "value": "2"}, {"key": "a", "value": "1"}]
SORTED = sorted(PAIRS, key=lambda p: p["key"])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, []),
        ("[]", []),
        ('[{"key":"b","value":"2"},{"key":"a","value":"1"}]', SORTED),
        (PAIRS, SORTED),
        ('[{"key": "b", "value": "2"},{"key": "a", "val', None),
    ],
    ids=["NULL for no rows", "empty array", "JSON text", "already decoded (asyncpg)", "cut short (MariaDB)"],
)
def test_parse(value: object, expected: object) -> None:
    assert parse(value) == expected  # type: ignore[arg-type]
