"""The tokenizer and parser: shape only (which keys and values are allowed is test_rules.py)."""

from __future__ import annotations

import pytest

from tracking_core.errors import ErrorCode, MlflowError
from tracking_core.search.parser import Comparison, parse_filter, parse_order_by


def flat(comparison: Comparison) -> tuple[object, ...]:
    """(type, key, comparator, value) with the value as its kind and content, for compact tables."""
    ident, value = comparison.identifier, comparison.value
    if value is None:
        literal: object = None
    elif value.items:
        literal = (value.kind.value, tuple((item.kind.value, item.value) for item in value.items))
    else:
        literal = (value.kind.value, value.value)
    return (ident.type, ident.key, comparison.comparator, literal)


FILTERS = [
    ("metric", "metrics.acc > 0.9", [("metrics", "acc", ">", ("number", "0.9"))]),
    ("no spaces", "metrics.acc>=-1e3", [("metrics", "acc", ">=", ("number", "-1e3"))]),
    ("bare key", "status = 'FINISHED'", [(None, "status", "=", ("string", "FINISHED"))]),
    ("double-quoted value", 'params.lr = "0.01"', [("params", "lr", "=", ("string", "0.01"))]),
    ("dotted key", "tags.mlflow.runName = 'x'", [("tags", "mlflow.runName", "=", ("string", "x"))]),
    ("backticked key", "tags.`mlflow.runName` = 'x'", [("tags", "mlflow.runName", "=", ("string", "x"))]),
    ("double-quoted key", "params.\"my param\" = 'a'", [("params", "my param", "=", ("string", "a"))]),
    ("quoted key with dash", 'metrics."a-b" < 1', [("metrics", "a-b", "<", ("number", "1"))]),
    ("bare backticked key", "`run name` = 'x'", [(None, "run name", "=", ("string", "x"))]),
    ("non-ascii key", "tags.café = 'crème'", [("tags", "café", "=", ("string", "crème"))]),
    ("key with colon and underscore", "params._a:b = 'x'", [("params", "_a:b", "=", ("string", "x"))]),
    ("key with slash", "metrics.eval/loss <= 2", [("metrics", "eval/loss", "<=", ("number", "2"))]),
    ("like", "params.p LIKE 'a%'", [("params", "p", "LIKE", ("string", "a%"))]),
    ("ilike lower case", "tags.t ilike '%A'", [("tags", "t", "ILIKE", ("string", "%A"))]),
    (
        "in list",
        "run_id IN ('a', \"b\")",
        [(None, "run_id", "IN", ("list", (("string", "a"), ("string", "b"))))],
    ),
    ("not in", "run_id not in ('a')", [(None, "run_id", "NOT IN", ("list", (("string", "a"),)))]),
    (
        "list of numbers",
        "experiment_id IN (1,2)",
        [(None, "experiment_id", "IN", ("list", (("number", "1"), ("number", "2"))))],
    ),
    ("is null", "tags.t IS NULL", [("tags", "t", "IS NULL", None)]),
    ("is not null mixed case", "params.p Is Not nUll", [("params", "p", "IS NOT NULL", None)]),
    ("unquoted word value is kept", "status = FINISHED", [(None, "status", "=", ("bare", "FINISHED"))]),
    ("odd comparators are kept for the rules", "tags.a <> 'b'", [("tags", "a", "<>", ("string", "b"))]),
    ("doubled quote", "tags.a = 'it''s'", [("tags", "a", "=", ("string", "it's"))]),
    ("backslash-escaped quote", r"tags.a = 'it\'s'", [("tags", "a", "=", ("string", "it's"))]),
    ("other quote inside", 'tags.a = "it\'s"', [("tags", "a", "=", ("string", "it's"))]),
    ("keyword inside a string", "tags.a = 'x or y'", [("tags", "a", "=", ("string", "x or y"))]),
    (
        "and, any case",
        "metrics.a > 1 and params.b = 'x' AnD tags.c != 'y'",
        [
            ("metrics", "a", ">", ("number", "1")),
            ("params", "b", "=", ("string", "x")),
            ("tags", "c", "!=", ("string", "y")),
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [row[1:] for row in FILTERS], ids=[row[0] for row in FILTERS])
def test_parse_filter(text: str, expected: list[tuple[object, ...]]) -> None:
    assert [flat(c) for c in parse_filter(text)] == expected


@pytest.mark.parametrize("text", [None, "", "   "], ids=["none", "empty", "blank"])
def test_empty_filter_is_no_condition(text: str | None) -> None:
    assert parse_filter(text) == []


BAD_FILTERS = [
    ("or", "metrics.a > 1 or metrics.b < 2", "Invalid clause(s) in filter string: 'or'"),
    ("OR", "metrics.a > 1 OR metrics.b < 2", "Invalid clause(s) in filter string: 'OR'"),
    ("parentheses", "(metrics.a > 1)", "Invalid clause(s) in filter string: '(metrics.a > 1)'"),
    ("not", "not metrics.a > 1", "Invalid clause(s) in filter string: 'not'"),
    ("not like", "params.a NOT LIKE 'x'", "Invalid clause(s) in filter string: 'params.a NOT'"),
    ("missing value", "metrics.a >", "Invalid clause(s) in filter string: 'metrics.a >'"),
    ("missing comparator", "metrics.a", "Invalid clause(s) in filter string: 'metrics.a'"),
    ("missing and", "metrics.a = 1 metrics.b = 2", "Invalid clause(s) in filter string: 'metrics.b'"),
    ("dangling and", "metrics.a = 1 AND", "expected a condition after 'AND'"),
    ("double and", "metrics.a = 1 AND AND metrics.b = 1", "Invalid clause(s) in filter string: 'AND'"),
    ("is value", "tags.a IS 'x'", "Invalid clause(s) in filter string: 'tags.a IS 'x''"),
    ("empty list", "run_id IN ()", "expected a non-empty list"),
    ("unclosed list", "run_id IN ('a'", "Invalid clause(s) in filter string: 'run_id IN ('a''"),
    ("list without comma", "run_id IN ('a' 'b')", "Invalid clause(s) in filter string"),
    ("unterminated string", "tags.a = 'x", "Unterminated quoted string starting at position 9"),
    ("unknown character", "metrics.a ~ 1", "Invalid character '~' at position 10"),
    ("single-quoted key", "tags.'a' = 'x'", "Invalid clause(s) in filter string"),
    ("keyword as key", "and = 'x'", "Invalid clause(s) in filter string: 'and'"),
]


@pytest.mark.parametrize(
    ("text", "message"), [row[1:] for row in BAD_FILTERS], ids=[row[0] for row in BAD_FILTERS]
)
def test_bad_filter(text: str, message: str) -> None:
    with pytest.raises(MlflowError) as caught:
        parse_filter(text)
    assert caught.value.code is ErrorCode.INVALID_PARAMETER_VALUE
    assert caught.value.status == 400
    assert message in caught.value.message


ORDER_BYS = [
    ("default ascending", "metrics.acc", ("metrics", "acc", True)),
    ("desc", "metrics.acc DESC", ("metrics", "acc", False)),
    ("lower-case asc", "params.p asc", ("params", "p", True)),
    ("bare attribute", "start_time desc", (None, "start_time", False)),
    ("backticked key", "tags.`x y` DESC", ("tags", "x y", False)),
    ("double-quoted key", 'metrics."a-b"', ("metrics", "a-b", True)),
]


@pytest.mark.parametrize(
    ("text", "expected"), [row[1:] for row in ORDER_BYS], ids=[row[0] for row in ORDER_BYS]
)
def test_parse_order_by(text: str, expected: tuple[object, ...]) -> None:
    clause = parse_order_by(text)
    assert (clause.identifier.type, clause.identifier.key, clause.ascending) == expected


BAD_ORDER_BYS = [
    ("empty", "", "Invalid order_by clause ''. Could not be parsed."),
    ("bad direction", "metrics.a ASCENDING", "Invalid ordering key in order_by clause 'metrics.a ASCENDING'"),
    ("extra word", "metrics.a DESC extra", "Could not be parsed"),
    ("comma list", "metrics.a, metrics.b", "Could not be parsed"),
    ("not an identifier", "'metrics.a'", "Could not be parsed"),
]


@pytest.mark.parametrize(
    ("text", "message"), [row[1:] for row in BAD_ORDER_BYS], ids=[row[0] for row in BAD_ORDER_BYS]
)
def test_bad_order_by(text: str, message: str) -> None:
    with pytest.raises(MlflowError) as caught:
        parse_order_by(text)
    assert caught.value.code is ErrorCode.INVALID_PARAMETER_VALUE
    assert message in caught.value.message
