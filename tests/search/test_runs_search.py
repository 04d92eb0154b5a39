"""select_runs against a real SQLite database: which runs come back, in which order, and errors.

The data (experiment 1 unless said otherwise; default order is start_time DESC, run_id ASC):

    run  name   user   status    start end  metrics (latest)       params            tags
    r1   alpha  alice  FINISHED  100   200  acc .9  loss .5 f1 .2  lr 0.01 model CNN team Vision, `my tag` x
    r2   Beta   bob    RUNNING   200   -    acc NaN loss .3 f1 NaN lr 0.1            team vision
    r3   gamma  alice  FAILED    300   350  acc .7                 model rnn
    r4   delta  carol  FINISHED  200   400  acc .9  loss -1 f1 .8  lr 0.01           team Audio (experiment 2)
    r5   eps    dave   FINISHED  500   600  acc 1                                    (deleted)

Datasets: mnist/abc123 is an input of r1 (context training) and r2 (eval); cifar/def456 of r1 (eval)
and r3 (no context). Two decoy edges point mnist at r4 with the wrong source or destination type.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from tracking_core.entities import ViewType
from tracking_core.errors import ErrorCode, MlflowError
from tracking_core.search.runs import select_runs
from tracking_core.store import tables

from .db import SearchDb

NAN = float("nan")

RUNS = [
    ("r1", 1, "alpha", "alice", "FINISHED", 100, 200, "active"),
    ("r2", 1, "Beta", "bob", "RUNNING", 200, None, "active"),
    ("r3", 1, "gamma", "alice", "FAILED", 300, 350, "active"),
    ("r4", 2, "delta", "carol", "FINISHED", 200, 400, "active"),
    ("r5", 1, "eps", "dave", "FINISHED", 500, 600, "deleted"),
]
METRICS = {
    "r1": {"acc": 0.9, "loss": 0.5, "f1": 0.2},
    "r2": {"acc": NAN, "loss": 0.3, "f1": NAN},
    "r3": {"acc": 0.7},
    "r4": {"acc": 0.9, "loss": -1.0, "f1": 0.8},
    "r5": {"acc": 1.0},
}
PARAMS = {
    "r1": {"lr": "0.01", "model": "CNN"},
    "r2": {"lr": "0.1"},
    "r3": {"model": "rnn"},
    "r4": {"lr": "0.01"},
}
TAGS = {
    "r1": {"team": "Vision", "my tag": "x", "mlflow.runName": "alpha"},
    "r2": {"team": "vision"},
    "r4": {"team": "Audio"},
}
DATASETS = [("d1", "mnist", "abc123"), ("d2", "cifar", "def456")]
# (input id, source type, dataset, destination type, run, context tag or None)
INPUTS = [
    ("i1", "DATASET", "d1", "RUN", "r1", "training"),
    ("i2", "DATASET", "d2", "RUN", "r1", "eval"),
    ("i3", "DATASET", "d1", "RUN", "r2", "eval"),
    ("i4", "DATASET", "d2", "RUN", "r3", None),
    ("i5", "MODEL", "d1", "RUN", "r4", "training"),
    ("i6", "DATASET", "d1", "MODEL", "r4", "training"),
]


@pytest.fixture(scope="module")
def db(empty_db: SearchDb) -> SearchDb:
    t = tables
    runs = [
        dict(
            zip(
                ("run_id", "experiment_id", "name", "user_id", "status", "start_time", "end_time"),
                row[:7],
                strict=True,
            )
        )
        | {"lifecycle_stage": row[7], "artifact_uri": f"s3://bucket/{row[1]}/{row[0]}/artifacts"}
        for row in RUNS
    ]
    metrics = [
        {"run_id": run, "key": key, "step": 0, "timestamp": 0}
        | ({"value": 0.0, "is_nan": True} if math.isnan(value) else {"value": value, "is_nan": False})
        for run, values in METRICS.items()
        for key, value in values.items()
    ]
    empty_db.load(
        [
            (t.experiments, [experiment(i) for i in (1, 2)]),
            (t.runs, runs),
            (t.latest_metrics, metrics),
            (
                t.params,
                [{"run_id": r, "key": k, "value": v} for r, kv in PARAMS.items() for k, v in kv.items()],
            ),
            (
                t.run_tags,
                [{"run_id": r, "key": k, "value": v} for r, kv in TAGS.items() for k, v in kv.items()],
            ),
            (t.datasets, [dataset(*row) for row in DATASETS]),
            (
                t.inputs,
                [
                    {"input_uuid": i, "source_type": st, "source_id": s, "destination_type": dt}
                    | {"destination_id": d}
                    for i, st, s, dt, d, _ in INPUTS
                ],
            ),
            (
                t.input_tags,
                [{"input_uuid": i, "name": "mlflow.data.context", "value": c} for i, *_, c in INPUTS if c],
            ),
        ]
    )
    return empty_db


def experiment(experiment_id: int) -> dict[str, Any]:
    return {
        "experiment_id": experiment_id,
        "name": f"e{experiment_id}",
        "artifact_location": f"/a/{experiment_id}",
        "lifecycle_stage": "active",
        "creation_time": 0,
        "last_update_time": 0,
    }


def dataset(uuid: str, name: str, digest: str) -> dict[str, Any]:
    return {
        "dataset_uuid": uuid,
        "experiment_id": 1,
        "name": name,
        "digest": digest,
        "source_type": "local",
        "source": "/data",
    }


def search(
    db: SearchDb,
    filter_string: str | None = None,
    order_by: Sequence[str] = (),
    *,
    experiment_ids: Sequence[int] = (1, 2),
    view_type: ViewType = ViewType.ACTIVE_ONLY,
    limit: int = 100,
    offset: int = 0,
) -> list[str]:
    stmt = select_runs(
        experiment_ids=experiment_ids,
        filter_string=filter_string,
        view_type=view_type,
        order_by=order_by,
        limit=limit,
        offset=offset,
    )
    return db.fetch(stmt)


def table(rows: list[tuple[Any, ...]]) -> Any:
    """parametrize arguments from rows whose first item is the test id."""
    return {"argvalues": [row[1:] for row in rows], "ids": [row[0] for row in rows]}


FILTERS = [
    ("no filter", None, ["r3", "r2", "r4", "r1"]),
    ("empty filter", "  ", ["r3", "r2", "r4", "r1"]),
    # metrics: the latest value; NaN (stored as 0) only satisfies !=
    ("metric >", "metrics.acc > 0.8", ["r4", "r1"]),
    ("metric =", "metrics.acc = 0.9", ["r4", "r1"]),
    ("metric != matches NaN", "metrics.acc != 0.9", ["r3", "r2"]),
    ("metric != 0 matches NaN stored as 0", "metrics.acc != 0", ["r3", "r2", "r4", "r1"]),
    ("metric = 0 misses NaN stored as 0", "metrics.acc = 0", []),
    ("metric <= 0 misses NaN", "metrics.acc <= 0", []),
    ("metric >= negative", "metric.loss >= -1", ["r2", "r4", "r1"]),
    ("metric != needs the key", "metrics.loss != 0.5", ["r2", "r4"]),
    ("metric < scientific", "metrics.loss < 1e-3", ["r4"]),
    ("metric unknown key", "metrics.nope > 0", []),
    # params
    ("param =", "params.lr = '0.01'", ["r4", "r1"]),
    ("param = double quotes", 'parameters.lr = "0.01"', ["r4", "r1"]),
    ("param != needs the key", "params.lr != '0.01'", ["r2"]),
    ("param LIKE is case-sensitive", "params.model LIKE '%N%'", ["r1"]),
    ("param ILIKE is not", "param.model ILIKE '%n%'", ["r3", "r1"]),
    ("param = is case-sensitive", "params.model = 'cnn'", []),
    ("param IS NULL", "params.model IS NULL", ["r2", "r4"]),
    ("param IS NOT NULL", "params.model IS NOT NULL", ["r3", "r1"]),
    # tags
    ("tag =", "tags.team = 'vision'", ["r2"]),
    ("tag LIKE", "tags.team LIKE 'V%'", ["r1"]),
    ("tag ILIKE", "tag.team ILIKE 'v%'", ["r2", "r1"]),
    ("tag LIKE underscore", "tags.team LIKE '_ision'", ["r2", "r1"]),
    ("tag != needs the key", "tags.team != 'Vision'", ["r2", "r4"]),
    ("tag IS NULL", "tags.team IS NULL", ["r3"]),
    ("tag IS NOT NULL", "tags.team is not null", ["r2", "r4", "r1"]),
    ("tag backticked key", "tags.`my tag` = 'x'", ["r1"]),
    ("tag double-quoted key", 'tags."my tag" = "x"', ["r1"]),
    ("tag dotted key", "tags.mlflow.runName = 'alpha'", ["r1"]),
    ("tag backticked dotted key", "tags.`mlflow.runName` = 'alpha'", ["r1"]),
    # string attributes
    ("run_name =", "run_name = 'Beta'", ["r2"]),
    ("run_name = is case-sensitive", "attributes.run_name = 'beta'", []),
    ("run_name alias", "attributes.`Run Name` ILIKE 'beta'", ["r2"]),
    ("run_name alias lower", "`run name` LIKE '%mm%'", ["r3"]),
    ("run_name LIKE is case-sensitive", "run_name LIKE 'b%'", []),
    ("run_name ILIKE", "run_name ILIKE 'B%'", ["r2"]),
    ("status =", "status = 'FINISHED'", ["r4", "r1"]),
    ("status != with attr prefix", "attr.status != 'FINISHED'", ["r3", "r2"]),
    ("user_id with run prefix", "run.user_id = 'alice'", ["r3", "r1"]),
    ("artifact_uri LIKE", "artifact_uri LIKE 's3://bucket/2/%'", ["r4"]),
    ("run_id =", "run_id = 'r2'", ["r2"]),
    ("run_id IN", "run_id IN ('r1', 'r3', 'nope')", ["r3", "r1"]),
    ("run_id NOT IN", "run_id NOT IN ('r1','r3')", ["r2", "r4"]),
    ("run_id LIKE", "attribute.run_id LIKE 'r%'", ["r3", "r2", "r4", "r1"]),
    # numeric attributes
    ("start_time >=", "start_time >= 200", ["r3", "r2", "r4"]),
    ("created alias", "created < 200", ["r1"]),
    ("Created alias =", "attributes.Created = 200", ["r2", "r4"]),
    ("start_time != ", "start_time != 200", ["r3", "r1"]),
    ("end_time skips unfinished", "end_time > 0", ["r3", "r4", "r1"]),
    ("end_time != skips unfinished", "end_time != 200", ["r3", "r4"]),
    ("end_time exponent integer", "end_time >= 3.5e2", ["r3", "r4"]),
    # datasets (only DATASET -> RUN edges count)
    ("dataset name", "datasets.name = 'mnist'", ["r2", "r1"]),
    ("dataset digest IN", "datasets.digest IN ('def456', 'zzz')", ["r3", "r1"]),
    ("dataset name NOT IN", "dataset.name NOT IN ('mnist')", ["r3", "r1"]),
    ("dataset context", "datasets.context = 'training'", ["r1"]),
    ("dataset context eval", "datasets.context = 'eval'", ["r2", "r1"]),
    ("dataset context !=", "datasets.context != 'training'", ["r2", "r1"]),
    ("dataset LIKE is case-sensitive", "datasets.name LIKE 'M%'", []),
    ("dataset ILIKE", "datasets.name ILIKE 'M%'", ["r2", "r1"]),
    # conjunctions
    ("metric and param and tag", "metrics.acc > 0.5 and params.lr = '0.01' AND tags.team = 'Audio'", ["r4"]),
    ("two conditions on one metric", "metrics.acc > 0.5 and metrics.acc < 0.8", ["r3"]),
    ("two metrics", "metrics.acc > 0.8 and metrics.loss > 0", ["r1"]),
    ("dataset and context are separate", "datasets.name = 'cifar' and datasets.context = 'training'", ["r1"]),
    ("nothing matches", "params.lr = '0.01' and tags.team = 'vision'", []),
]


@pytest.mark.parametrize(("filter_string", "expected"), **table(FILTERS))
def test_filter(db: SearchDb, filter_string: str | None, expected: list[str]) -> None:
    assert search(db, filter_string) == expected


ORDERS = [
    ("default", [], ["r3", "r2", "r4", "r1"]),
    ("metric desc: ties by start_time desc, NaN last", ["metrics.acc DESC"], ["r4", "r1", "r3", "r2"]),
    ("metric asc: NaN last", ["metrics.acc"], ["r3", "r4", "r1", "r2"]),
    ("metric asc: NaN before missing", ["metrics.f1 ASC"], ["r1", "r4", "r2", "r3"]),
    ("metric desc: NaN before missing", ["metrics.f1 DESC"], ["r4", "r1", "r2", "r3"]),
    ("metric with negative", ["metrics.loss"], ["r4", "r2", "r1", "r3"]),
    ("param asc: missing last", ["params.lr ASC"], ["r4", "r1", "r2", "r3"]),
    ("param desc: missing last", ["params.lr DESC"], ["r2", "r4", "r1", "r3"]),
    ("tag binary order", ["tags.team"], ["r4", "r1", "r2", "r3"]),
    ("tag desc", ["tags.team desc"], ["r2", "r1", "r4", "r3"]),
    ("quoted tag key", ["tags.`my tag` DESC"], ["r1", "r3", "r2", "r4"]),
    ("end_time asc: unfinished last", ["end_time ASC"], ["r1", "r3", "r4", "r2"]),
    ("end_time desc: unfinished last", ["end_time DESC"], ["r4", "r3", "r1", "r2"]),
    ("start_time asc: ties by run_id", ["start_time ASC"], ["r1", "r2", "r4", "r3"]),
    ("created alias", ["attributes.created"], ["r1", "r2", "r4", "r3"]),
    ("run_id desc", ["run_id DESC"], ["r4", "r3", "r2", "r1"]),
    ("run_name binary order", ["run_name"], ["r2", "r1", "r4", "r3"]),
    ("run_name alias", ["attributes.`Run Name` DESC"], ["r3", "r4", "r1", "r2"]),
    ("status then start_time", ["status", "start_time ASC"], ["r3", "r1", "r4", "r2"]),
    ("user then metric", ["user_id", "metrics.acc DESC"], ["r1", "r3", "r2", "r4"]),
    ("two metrics", ["metrics.loss DESC", "metrics.acc"], ["r1", "r2", "r4", "r3"]),
]


@pytest.mark.parametrize(("order_by", "expected"), **table(ORDERS))
def test_order_by(db: SearchDb, order_by: list[str], expected: list[str]) -> None:
    assert search(db, order_by=order_by) == expected


def test_filter_and_order_by_together(db: SearchDb) -> None:
    assert search(db, "tags.team ILIKE '%V%'", ["metrics.loss"]) == ["r2", "r1"]


SCOPES = [
    ("active only", ViewType.ACTIVE_ONLY, (1, 2), ["r3", "r2", "r4", "r1"]),
    ("deleted only", ViewType.DELETED_ONLY, (1, 2), ["r5"]),
    ("all", ViewType.ALL, (1, 2), ["r5", "r3", "r2", "r4", "r1"]),
    ("one experiment", ViewType.ALL, (2,), ["r4"]),
    ("no experiments", ViewType.ALL, (), []),
    ("unknown experiment", ViewType.ALL, (99,), []),
]


@pytest.mark.parametrize(("view_type", "experiment_ids", "expected"), **table(SCOPES))
def test_scope(
    db: SearchDb, view_type: ViewType, experiment_ids: tuple[int, ...], expected: list[str]
) -> None:
    assert search(db, experiment_ids=experiment_ids, view_type=view_type) == expected


PAGES = [
    ("first page", 2, 0, ["r3", "r2"]),
    ("second page", 2, 2, ["r4", "r1"]),
    ("past the end", 2, 4, []),
    ("partial page", 3, 3, ["r1"]),
]


@pytest.mark.parametrize(("limit", "offset", "expected"), **table(PAGES))
def test_paging(db: SearchDb, limit: int, offset: int, expected: list[str]) -> None:
    assert search(db, limit=limit, offset=offset) == expected


BAD_FILTERS = [
    ("or", "metrics.acc > 1 OR metrics.loss > 1", "Invalid clause(s) in filter string: 'OR'"),
    (
        "unquoted param",
        "params.lr = 0.01",
        "Expected a quoted string value for parameter (e.g. 'my-value'). Got value 0.01",
    ),
    ("unquoted tag word", "tags.team = Vision", "Expected a quoted string value for tag"),
    ("unquoted attribute", "status = FINISHED", "Expected a quoted string value for attribute"),
    ("quoted metric", 'metrics.acc = "0.4"', 'Expected numeric value type for metric. Found "0.4"'),
    ("NaN literal", "metrics.acc = NaN", "Expected numeric value type for metric. Found NaN"),
    (
        "quoted time",
        "start_time > '1'",
        "Expected numeric value type for numeric attribute: start_time. Found '1'",
    ),
    ("fractional time", "end_time > 1.5", "Expected an integer value for numeric attribute: end_time"),
    ("metric LIKE", "metrics.acc LIKE 1", "Invalid comparator 'LIKE' not one of"),
    ("tag <", "tags.team < 'x'", "Invalid comparator '<' not one of"),
    ("<>", "tags.team <> 'x'", "Invalid comparator '<>'"),
    ("==", "params.lr == '0.01'", "Invalid comparator '=='"),
    ("time LIKE", "start_time LIKE 1", "Invalid comparator 'LIKE'"),
    ("dataset >", "datasets.name > 'a'", "Invalid comparator '>'"),
    ("metric IS NULL", "metrics.acc IS NULL", "IS NULL / IS NOT NULL is only supported for params and tags"),
    ("attribute IS NULL", "end_time IS NULL", "not for 'attribute' 'end_time'"),
    ("IN on run_name", "run_name IN ('a')", "Only ['run_id'] attributes support comparison with a list"),
    ("IN on param", "params.lr IN ('a')", "Invalid comparator 'IN'"),
    ("IN without list", "run_id IN 'a'", "Expected a list of quoted string values"),
    ("IN numbers", "run_id IN (1, 2)", "Expected a quoted string value for attribute"),
    ("= with list", "run_id = ('a')", "Expected a quoted string value for attribute"),
    ("unknown type", "bogus.x = 'a'", "Invalid entity type 'bogus'"),
    ("unknown attribute", "foo = 'x'", "Invalid attribute key 'foo' specified"),
    ("experiment_id is not a run attribute", "experiment_id = '1'", "Invalid attribute key 'experiment_id'"),
    ("unknown dataset key", "datasets.foo = 'a'", "Invalid dataset key 'foo' specified"),
    ("empty key", "tags.`` = 'a'", "Invalid tag key ''"),
]


@pytest.mark.parametrize(("filter_string", "message"), **table(BAD_FILTERS))
def test_bad_filter(filter_string: str, message: str) -> None:
    with pytest.raises(MlflowError) as caught:
        select_runs(
            experiment_ids=[1],
            filter_string=filter_string,
            view_type=ViewType.ALL,
            order_by=[],
            limit=1,
            offset=0,
        )
    assert caught.value.code is ErrorCode.INVALID_PARAMETER_VALUE
    assert message in caught.value.message


BAD_ORDERS = [
    ("duplicate", ["metrics.a", "metrics.a DESC"], "`order_by` contains duplicate fields"),
    ("duplicate by alias", ["created", "start_time"], "`order_by` contains duplicate fields"),
    ("duplicate by type alias", ["tags.x", "tag.x"], "`order_by` contains duplicate fields"),
    ("bad direction", ["metrics.a ASCENDING"], "Invalid ordering key in order_by clause"),
    ("unparsable", ["metrics.a DESC extra"], "Could not be parsed"),
    ("empty", [""], "Could not be parsed"),
    ("datasets", ["datasets.name"], "Invalid order_by entity type 'datasets'"),
    ("unknown attribute", ["foo"], "Invalid attribute key 'foo'"),
    ("unknown type", ["bogus.x"], "Invalid entity type 'bogus'"),
]


@pytest.mark.parametrize(("order_by", "message"), **table(BAD_ORDERS))
def test_bad_order_by(order_by: list[str], message: str) -> None:
    with pytest.raises(MlflowError) as caught:
        select_runs(
            experiment_ids=[1],
            filter_string=None,
            view_type=ViewType.ALL,
            order_by=order_by,
            limit=1,
            offset=0,
        )
    assert caught.value.code is ErrorCode.INVALID_PARAMETER_VALUE
    assert message in caught.value.message


def test_selects_only_run_id() -> None:
    stmt = select_runs(
        experiment_ids=[1], filter_string=None, view_type=ViewType.ALL, order_by=[], limit=1, offset=0
    )
    assert [column.name for column in stmt.selected_columns] == ["run_id"]


DIALECTS = {"postgresql": postgresql.dialect(), "mysql": mysql.dialect(), "sqlite": sqlite.dialect()}
COMPILES = [
    (
        "everything",
        "metrics.acc != 1 and params.p ILIKE 'x%' and tags.t IS NULL",
        ["metrics.acc DESC", "params.p"],
    ),
    ("datasets", "datasets.context IN ('a') and datasets.digest LIKE 'x%'", ["tags.t", "end_time"]),
    (
        "attributes",
        "run_id NOT IN ('a') and start_time > 5000000000000 and run_name ILIKE 'a'",
        ["run_name DESC"],
    ),
]


@pytest.mark.parametrize("dialect", DIALECTS.values(), ids=DIALECTS.keys())
@pytest.mark.parametrize(("filter_string", "order_by"), **table(COMPILES))
def test_compiles_for_every_backend(dialect: sa.Dialect, filter_string: str, order_by: list[str]) -> None:
    stmt = select_runs(
        experiment_ids=[1, 2],
        filter_string=filter_string,
        view_type=ViewType.ALL,
        order_by=order_by,
        limit=5,
        offset=10,
    )
    sql = str(stmt.compile(dialect=dialect))
    assert "ORDER BY" in sql
    assert "LIMIT" in sql
