"""search_experiments: filter and order_by strings compiled to one SELECT (spec §6.3)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from tracking_core import validation
from tracking_core.entities import LifecycleStage, ViewType
from tracking_core.errors import invalid
from tracking_core.search.parser import Value, ValueKind
from tracking_core.search.rules import (
    INTEGER_ATTRIBUTE,
    LIST_COMPARATORS,
    NULL_COMPARATORS,
    STRING_COMPARATORS,
    Condition,
    EntityRules,
    KeyRule,
    KeySpace,
    SortKey,
    quoted_string,
    resolve_filter,
    resolve_order_by,
)
from tracking_core.search.sql import compare, direction, key_value_test
from tracking_core.store.tables import experiment_tags, experiments


def experiment_id(value: Value, label: str) -> int:
    # MLflow's wire format carries experiment ids as strings, so both '1' and 1 are accepted.
    if value.kind not in (ValueKind.STRING, ValueKind.NUMBER):
        raise invalid(f"Expected a quoted string value for {label} (e.g. '1'). Got value {value.text}")
    return validation.experiment_id(value.value)



EXPERIMENT_RULES = EntityRules(
    types={
        "attribute": KeySpace(
            "attribute",
            keys={
                "name": KeyRule(STRING_COMPARATORS, quoted_string),
                "experiment_id": KeyRule(frozenset({"=", "!="}) | LIST_COMPARATORS, experiment_id),
                "creation_time": INTEGER_ATTRIBUTE,
                "last_update_time": INTEGER_ATTRIBUTE,
            },
        ),
        "tag": KeySpace(
            "tag", any_key=KeyRule(STRING_COMPARATORS | NULL_COMPARATORS, quoted_string), sortable=False
        ),
    },
)

_ATTRIBUTE_COLUMNS: dict[str, sa.Column[Any]] = {
    name: experiments.c[name] for name in ("name", "experiment_id", "creation_time", "last_update_time")
}


def _filter(condition: Condition) -> ColumnElement[bool]:
    if condition.type == "attribute":
        return compare(_ATTRIBUTE_COLUMNS[condition.key], condition.comparator, condition.value)
    tag = experiment_tags.c
    link = tag.experiment_id == experiments.c.experiment_id
    return key_value_test(link, tag.key, condition.key, tag.value, condition.comparator, condition.value)


def _sort_keys(order_by: Sequence[str]) -> list[SortKey]:
    keys = resolve_order_by(order_by, EXPERIMENT_RULES)
    if not keys:
        keys = [SortKey("attribute", "creation_time", False), SortKey("attribute", "experiment_id", True)]
    # MLflow's tiebreak is descending here (runs use ascending run_id); kept for identical paging.
    if not any(key.key == "experiment_id" for key in keys):
        keys.append(SortKey("attribute", "experiment_id", False))
    return keys


def select_experiments(
    *,
    filter_string: str | None,
    view_type: ViewType,
    order_by: Sequence[str],
    limit: int,
    offset: int,
) -> sa.Select[tuple[int]]:
    """SELECT experiment_id of the matching experiments, in the requested order, one page of them.

    Raises MlflowError (INVALID_PARAMETER_VALUE) for a bad filter or order_by.
    """
    conditions = resolve_filter(filter_string, EXPERIMENT_RULES)
    stages = [LifecycleStage(stage).value for stage in view_type.stages]
    return (
        sa.select(experiments.c.experiment_id)
        .where(experiments.c.lifecycle_stage.in_(stages))
        .where(*(_filter(condition) for condition in conditions))
        .order_by(*(direction(_ATTRIBUTE_COLUMNS[k.key], k.ascending) for k in _sort_keys(order_by)))
        .limit(limit)
        .offset(offset)
    )
