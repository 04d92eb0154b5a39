"""select_experiments against a real SQLite database.

    id  name   created  updated  stage    tags
    1   Alpha  100      500      active   team vision, `my tag` x
    2   beta   200      300      active   team Vision
    3   gamma  200      100      active
    4   delta  50       50       deleted  team vision

Default order is creation_time DESC, experiment_id ASC; any other order gets experiment_id DESC
appended as the tiebreak (as MLflow does), which decides between 2 and 3.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from tracking_core.entities import ViewType
from tracking_core.errors import ErrorCode, MlflowError
from tracking_core.search.experiments import select_experiments
from tracking_core.store import tables

from .db import SearchDb

EXPERIMENTS = [
    (1, "Alpha", 100, 500, "active"),
    (2, "beta", 200, 300, "active"),
    (3, "gamma", 200, 100, "active"),
    (4, "delta", 50, 50, "deleted"),
]
TAGS = {1: {"team": "vision", "my tag": "x"}, 2: {"team": "Vision"}, 4: {"team": "vision"}}


@pytest.fixture(scope="module")
def db(empty_db: SearchDb) -> SearchDb:
    columns = ("experiment_id", "name", "creation_time", "last_update_time", "lifecycle_stage")
    empty_db.load(
        [
            (
                tables.experiments,
                [
                    dict(zip(columns, row, strict=True)) | {"artifact_location": f"/a/{row[0]}"}
                    for row in EXPERIMENTS
                ],
            ),
            (
                tables.experiment_tags,
                [{"experiment_id": e, "key": k, "value": v} for e, kv in TAGS.items() for k, v in kv.items()],
            ),
        ]
    )
    return empty_db


def search(
    db: SearchDb,
    filter_string: str | None = None,
    order_by: Sequence[str] = (),
    *,
    view_type: ViewType = ViewType.ACTIVE_ONLY,
    limit: int = 100,
    offset: int = 0,
) -> list[int]:
    stmt = select_experiments(
        filter_string=filter_string, view_type=view_type, order_by=order_by, limit=limit, offset=offset
    )
    return db.fetch(stmt)


def table(rows: list[tuple[Any, ...]]) -> Any:
    return {"argvalues": [row[1:] for row in rows], "ids": [row[0] for row in rows]}


FILTERS = [
    ("no filter", None, [2, 3, 1]),
    ("name =", "name = 'Alpha'", [1]),
    ("name = is case-sensitive", "name = 'alpha'", []),
    ("name LIKE is case-sensitive", "name LIKE 'a%'", []),
    ("name ILIKE", "attributes.name ILIKE 'a%'", [1]),
    ("name !=", "name != 'beta'", [3, 1]),
    ("experiment_id = quoted", "experiment_id = '2'", [2]),
    ("experiment_id = number", "experiment_id = 2", [2]),
    ("experiment_id !=", "experiment_id != '2'", [3, 1]),
    ("experiment_id IN", "experiment_id IN ('1', '3', '99')", [3, 1]),
    ("experiment_id NOT IN numbers", "experiment_id NOT IN (1)", [2, 3]),
    ("creation_time >", "creation_time > 100", [2, 3]),
    ("creation_time =", "creation_time = 200", [2, 3]),
    ("last_update_time <=", "last_update_time <= 300", [2, 3]),
    ("tag =", "tags.team = 'vision'", [1]),
    ("tag ILIKE", "tags.team ILIKE 'VISION'", [2, 1]),
    ("tag LIKE", "tag.team LIKE 'V%'", [2]),
    ("tag != needs the key", "tags.team != 'vision'", [2]),
    ("tag IS NULL", "tags.team IS NULL", [3]),
    ("tag IS NOT NULL", "tags.team IS NOT NULL", [2, 1]),
    ("quoted tag key", "tags.`my tag` = 'x'", [1]),
    ("conjunction", "name ILIKE '%a%' and tags.team LIKE 'V%' and creation_time >= 200", [2]),
]


@pytest.mark.parametrize(("filter_string", "expected"), **table(FILTERS))
def test_filter(db: SearchDb, filter_string: str | None, expected: list[int]) -> None:
    assert search(db, filter_string) == expected


ORDERS = [
    ("default", [], [2, 3, 1]),
    ("name binary order", ["name"], [1, 2, 3]),
    ("name desc", ["name DESC"], [3, 2, 1]),
    ("creation_time asc: tie by experiment_id desc", ["creation_time ASC"], [1, 3, 2]),
    ("creation_time desc: tie by experiment_id desc", ["creation_time desc"], [3, 2, 1]),
    ("explicit experiment_id tiebreak", ["creation_time DESC", "experiment_id ASC"], [2, 3, 1]),
    ("last_update_time", ["last_update_time"], [3, 2, 1]),
    ("experiment_id desc", ["attribute.experiment_id DESC"], [3, 2, 1]),
    ("duplicates allowed", ["name", "name DESC"], [1, 2, 3]),
]


@pytest.mark.parametrize(("order_by", "expected"), **table(ORDERS))
def test_order_by(db: SearchDb, order_by: list[str], expected: list[int]) -> None:
    assert search(db, order_by=order_by) == expected


SCOPES = [
    ("active only", ViewType.ACTIVE_ONLY, None, [2, 3, 1]),
    ("deleted only", ViewType.DELETED_ONLY, None, [4]),
    ("all", ViewType.ALL, None, [2, 3, 1, 4]),
    ("all with a tag filter", ViewType.ALL, "tags.team = 'vision'", [1, 4]),
]


@pytest.mark.parametrize(("view_type", "filter_string", "expected"), **table(SCOPES))
def test_view_type(db: SearchDb, view_type: ViewType, filter_string: str | None, expected: list[int]) -> None:
    assert search(db, filter_string, view_type=view_type) == expected


@pytest.mark.parametrize(
    ("limit", "offset", "expected"), [(2, 0, [2, 3]), (2, 2, [1]), (2, 4, [])], ids=["first", "last", "past"]
)
def test_paging(db: SearchDb, limit: int, offset: int, expected: list[int]) -> None:
    assert search(db, limit=limit, offset=offset) == expected


BAD_FILTERS = [
    ("params", "params.a = 'x'", "Invalid entity type 'params'"),
    ("metrics", "metrics.a > 1", "Invalid entity type 'metrics'"),
    ("unknown attribute", "lifecycle_stage = 'x'", "Invalid attribute key 'lifecycle_stage'"),
    (
        "experiment_id not an int",
        "experiment_id = 'abc'",
        "Invalid experiment ID 'abc'. Experiment ID must be",
    ),
    ("experiment_id list not ints", "experiment_id IN ('1', 'a')", "Invalid experiment ID 'a'"),
    ("experiment_id LIKE", "experiment_id LIKE '1'", "Invalid comparator 'LIKE'"),
    ("experiment_id >", "experiment_id > 1", "Invalid comparator '>'"),
    ("experiment_id unquoted word", "experiment_id = abc", "Expected a quoted string value for attribute"),
    ("name IN", "name IN ('a')", "Only ['experiment_id'] attributes support comparison with a list"),
    ("name IS NULL", "name IS NULL", "IS NULL / IS NOT NULL is only supported for tags, not for 'attribute'"),
    ("name unquoted", "name = 1", "Expected a quoted string value for attribute"),
    (
        "quoted time",
        "creation_time > '1'",
        "Expected numeric value type for numeric attribute: creation_time",
    ),
    ("tag <", "tags.a < 'x'", "Invalid comparator '<'"),
    ("or", "name = 'a' or name = 'b'", "Invalid clause(s) in filter string: 'or'"),
]


@pytest.mark.parametrize(("filter_string", "message"), **table(BAD_FILTERS))
def test_bad_filter(filter_string: str, message: str) -> None:
    with pytest.raises(MlflowError) as caught:
        select_experiments(
            filter_string=filter_string, view_type=ViewType.ALL, order_by=[], limit=1, offset=0
        )
    assert caught.value.code is ErrorCode.INVALID_PARAMETER_VALUE
    assert message in caught.value.message


BAD_ORDERS = [
    ("tags", ["tags.team"], "Invalid order_by entity type 'tags'"),
    ("unknown attribute", ["foo"], "Invalid attribute key 'foo'"),
    ("bad direction", ["name UP"], "Invalid ordering key in order_by clause 'name UP'"),
]


@pytest.mark.parametrize(("order_by", "message"), **table(BAD_ORDERS))
def test_bad_order_by(order_by: list[str], message: str) -> None:
    with pytest.raises(MlflowError) as caught:
        select_experiments(filter_string=None, view_type=ViewType.ALL, order_by=order_by, limit=1, offset=0)
    assert caught.value.code is ErrorCode.INVALID_PARAMETER_VALUE
    assert message in caught.value.message


DIALECTS = {"postgresql": postgresql.dialect(), "mysql": mysql.dialect(), "sqlite": sqlite.dialect()}


@pytest.mark.parametrize("dialect", DIALECTS.values(), ids=DIALECTS.keys())
def test_compiles_for_every_backend(dialect: sa.Dialect) -> None:
    stmt = select_experiments(
        filter_string="name ILIKE 'a%' and tags.t IS NULL and tags.u LIKE 'x' and experiment_id IN ('1', 2)",
        view_type=ViewType.ALL,
        order_by=["last_update_time DESC"],
        limit=5,
        offset=10,
    )
    assert [column.name for column in stmt.selected_columns] == ["experiment_id"]
    assert "ORDER BY" in str(stmt.compile(dialect=dialect))
