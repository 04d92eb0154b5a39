"""search_runs: filter and order_by strings compiled to one SELECT over our schema (spec §6.2).

Every condition becomes a predicate on `runs` (attributes) or a correlated EXISTS (metrics,
params, tags, datasets), so a condition on a key the run lacks never matches, `!=` included, and
conditions on different keys are simply ANDed. Each order_by key on a metric, param or tag is a
LEFT JOIN on the (run_id, key) primary key, which yields at most one row per run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from tracking_core.entities import LifecycleStage, ViewType
from tracking_core.search.rules import (
    INTEGER_ATTRIBUTE,
    LIST_COMPARATORS,
    NULL_COMPARATORS,
    NUMERIC_COMPARATORS,
    STRING_COMPARATORS,
    Condition,
    EntityRules,
    KeyRule,
    KeySpace,
    SortKey,
    number,
    quoted_string,
    resolve_filter,
    resolve_order_by,
)
from tracking_core.search.sql import compare, direction, key_value_test, missing_last
from tracking_core.store.tables import datasets, input_tags, inputs, latest_metrics, params, run_tags, runs

DATASET_CONTEXT_TAG = "mlflow.data.context"

_TEXT = KeyRule(STRING_COMPARATORS, quoted_string)
_TEXT_OR_NULL = KeyRule(STRING_COMPARATORS | NULL_COMPARATORS, quoted_string)
_TEXT_OR_LIST = KeyRule(STRING_COMPARATORS | LIST_COMPARATORS, quoted_string)

RUN_RULES = EntityRules(
    types={
        "metric": KeySpace("metric", any_key=KeyRule(NUMERIC_COMPARATORS, number)),
        "param": KeySpace("parameter", any_key=_TEXT_OR_NULL),
        "tag": KeySpace("tag", any_key=_TEXT_OR_NULL),
        "attribute": KeySpace(
            "attribute",
            keys={
                "run_id": _TEXT_OR_LIST,
                "run_name": _TEXT,
                "status": _TEXT,
                "user_id": _TEXT,
                "artifact_uri": _TEXT,
                "start_time": INTEGER_ATTRIBUTE,
                "end_time": INTEGER_ATTRIBUTE,
            },
            key_aliases={
                "run name": "run_name",
                "Run name": "run_name",
                "Run Name": "run_name",
                "created": "start_time",
                "Created": "start_time",
            },
        ),
        "dataset": KeySpace(
            "dataset",
            keys={"name": _TEXT_OR_LIST, "digest": _TEXT_OR_LIST, "context": _TEXT_OR_LIST},
            sortable=False,
        ),
    },
    unique_order_by=True,
)

_ATTRIBUTE_COLUMNS: dict[str, sa.Column[Any]] = {
    "run_id": runs.c.run_id,
    "run_name": runs.c.name,
    "status": runs.c.status,
    "user_id": runs.c.user_id,
    "artifact_uri": runs.c.artifact_uri,
    "start_time": runs.c.start_time,
    "end_time": runs.c.end_time,
}

_KEYED_TABLES: dict[str, sa.Table] = {"metric": latest_metrics, "param": params, "tag": run_tags}


def _has_key(table: sa.Table, key: str, *tests: ColumnElement[bool]) -> ColumnElement[bool]:
    return sa.exists().where(table.c.run_id == runs.c.run_id, table.c.key == key, *tests)


def _attribute_filter(condition: Condition) -> ColumnElement[bool]:
    return compare(_ATTRIBUTE_COLUMNS[condition.key], condition.comparator, condition.value)


def _metric_filter(condition: Condition) -> ColumnElement[bool]:
    # NaN is stored as 0 with is_nan set: it satisfies only `!=`, whatever the number.
    value, is_nan = latest_metrics.c.value, latest_metrics.c.is_nan
    if condition.comparator == "!=":
        test = sa.or_(value != condition.value, is_nan)
    else:
        test = sa.and_(compare(value, condition.comparator, condition.value), sa.not_(is_nan))
    return _has_key(latest_metrics, condition.key, test)


def _string_key_filter(condition: Condition) -> ColumnElement[bool]:
    c = _KEYED_TABLES[condition.type].c
    return key_value_test(c.run_id == runs.c.run_id, c.key, condition.key, c.value, condition.comparator,
                          condition.value)


def _dataset_filter(condition: Condition) -> ColumnElement[bool]:
    linked = sa.and_(
        inputs.c.source_type == "DATASET",
        inputs.c.destination_type == "RUN",
        inputs.c.destination_id == runs.c.run_id,
    )
    if condition.key == "context":
        tag = input_tags.c
        test = sa.and_(tag.input_uuid == inputs.c.input_uuid, tag.name == DATASET_CONTEXT_TAG)
        column = tag.value
        source = inputs.join(input_tags, test)
    else:
        column = datasets.c[condition.key]
        source = inputs.join(datasets, datasets.c.dataset_uuid == inputs.c.source_id)
    match = compare(column, condition.comparator, condition.value)
    return sa.select(sa.literal(1)).select_from(source).where(linked, match).exists()


_FILTERS: dict[str, Callable[[Condition], ColumnElement[bool]]] = {
    "attribute": _attribute_filter,
    "metric": _metric_filter,
    "param": _string_key_filter,
    "tag": _string_key_filter,
    "dataset": _dataset_filter,
}


def _with_tiebreaks(keys: list[SortKey]) -> list[SortKey]:
    """Append `start_time DESC` then `run_id ASC` unless already ordered on, so pages are stable."""
    present = {(k.type, k.key) for k in keys}
    tiebreaks = [SortKey("attribute", "start_time", False), SortKey("attribute", "run_id", True)]
    return keys + [k for k in tiebreaks if (k.type, k.key) not in present]


def _ordering(keys: list[SortKey]) -> tuple[sa.FromClause, list[ColumnElement[Any]]]:
    source: sa.FromClause = runs
    terms: list[ColumnElement[Any]] = []
    for index, key in enumerate(keys):
        if key.type == "attribute":
            column = _ATTRIBUTE_COLUMNS[key.key]
            if column.nullable:
                terms.append(missing_last(column.is_(None)))
            terms.append(direction(column, key.ascending))
            continue
        table = _KEYED_TABLES[key.type].alias(f"order_{index}")
        source = source.outerjoin(table, sa.and_(table.c.run_id == runs.c.run_id, table.c.key == key.key))
        missing = table.c.run_id.is_(None)
        if key.type == "metric":
            # Numbers, then NaN, then runs without the metric, in either direction.
            terms.append(sa.case((missing, 2), (table.c.is_nan, 1), else_=0))
        else:
            terms.append(missing_last(missing))
        terms.append(direction(table.c.value, key.ascending))
    return source, terms


def select_runs(
    *,
    experiment_ids: Sequence[int],
    filter_string: str | None,
    view_type: ViewType,
    order_by: Sequence[str],
    limit: int,
    offset: int,
) -> sa.Select[tuple[str]]:
    """SELECT run_id of the matching runs, in the requested order, one page of them.

    Raises MlflowError (INVALID_PARAMETER_VALUE) for a bad filter or order_by.
    """
    conditions = resolve_filter(filter_string, RUN_RULES)
    source, terms = _ordering(_with_tiebreaks(resolve_order_by(order_by, RUN_RULES)))
    stages = [LifecycleStage(stage).value for stage in view_type.stages]
    return (
        sa.select(runs.c.run_id)
        .select_from(source)
        .where(runs.c.experiment_id.in_(experiment_ids), runs.c.lifecycle_stage.in_(stages))
        .where(*(_FILTERS[condition.type](condition) for condition in conditions))
        .order_by(*terms)
        .limit(limit)
        .offset(offset)
    )
