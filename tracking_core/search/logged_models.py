"""search_logged_models: filter, dataset and order_by arguments compiled to one SELECT.

The client resolves `runs:/<run>/<name>` URIs with `filter: "name = '<name>'"`, so this search
sits on the path of every MLflow 3 model load.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from tracking_core.entities import LifecycleStage
from tracking_core.errors import invalid
from tracking_core.search.rules import (
    INTEGER_ATTRIBUTE,
    LIST_COMPARATORS,
    NUMERIC_COMPARATORS,
    STRING_COMPARATORS,
    Condition,
    EntityRules,
    KeyRule,
    KeySpace,
    number,
    quoted_string,
    resolve_filter,
)
from tracking_core.search.sql import compare, direction, key_value_test, missing_last
from tracking_core.store.tables import logged_model_metrics, logged_model_params, logged_model_tags, logged_models

LM = logged_models.c
_STRING = KeyRule(STRING_COMPARATORS | LIST_COMPARATORS, quoted_string)

_ATTRIBUTES: dict[str, Any] = {
    "name": LM.name,
    "model_id": LM.model_id,
    "model_type": LM.model_type,
    "status": LM.status,
    "source_run_id": LM.source_run_id,
    "creation_timestamp": LM.creation_timestamp_ms,
    "last_updated_timestamp": LM.last_updated_timestamp_ms,
}
_ALIASES = {"creation_time": "creation_timestamp", "last_updated_time": "last_updated_timestamp",
            "creation_timestamp_ms": "creation_timestamp", "last_updated_timestamp_ms": "last_updated_timestamp"}

RULES = EntityRules(
    types={
        "attribute": KeySpace(
            "attribute",
            keys={k: (INTEGER_ATTRIBUTE if "timestamp" in k else _STRING) for k in _ATTRIBUTES},
            key_aliases=_ALIASES,
        ),
        "metric": KeySpace("metric", any_key=KeyRule(NUMERIC_COMPARATORS, number)),
        "param": KeySpace("param", any_key=KeyRule(STRING_COMPARATORS, quoted_string)),
        "tag": KeySpace("tag", any_key=KeyRule(STRING_COMPARATORS, quoted_string)),
    },
)


@dataclass(frozen=True)
class ModelOrder:
    field_name: str
    ascending: bool = True
    dataset_name: str | None = None
    dataset_digest: str | None = None


def _dataset_match(name: str | None, digest: str | None) -> list[ColumnElement[bool]]:
    m = logged_model_metrics.c
    where = [m.dataset_name == name] if name else []
    return where + ([m.dataset_digest == digest] if digest else [])


def _condition(c: Condition) -> ColumnElement[bool]:
    if c.type == "attribute":
        return compare(_ATTRIBUTES[c.key], c.comparator, c.value)
    if c.type == "metric":
        m = logged_model_metrics.c
        return sa.exists().where(m.model_id == LM.model_id, m.key == c.key, m.is_nan.is_(False),
                                 compare(m.value, c.comparator, c.value))
    kv = (logged_model_params if c.type == "param" else logged_model_tags).c
    return key_value_test(kv.model_id == LM.model_id, kv.key, c.key, kv.value, c.comparator, c.value)


def _order_terms(order: ModelOrder) -> list[ColumnElement[Any]]:
    field = order.field_name
    if field.startswith("metrics."):
        m = logged_model_metrics.c
        latest = (
            sa.select(m.value)
            .where(m.model_id == LM.model_id, m.key == field[len("metrics."):], m.is_nan.is_(False),
                   *_dataset_match(order.dataset_name, order.dataset_digest))
            .order_by(m.step.desc(), m.timestamp.desc())
            .limit(1)
            .scalar_subquery()
        )
        return [missing_last(latest.is_(None)), direction(latest, order.ascending)]
    key = _ALIASES.get(field, field)
    if key not in _ATTRIBUTES:
        raise invalid(f"Invalid order_by field '{field}'. Valid fields are metrics.<key> and "
                      f"{sorted(_ATTRIBUTES)}.")
    return [direction(_ATTRIBUTES[key], order.ascending)]


def select_logged_models(
    *,
    experiment_ids: Sequence[int],
    filter_string: str | None,
    datasets: Sequence[dict[str, Any]],
    order_by: Sequence[ModelOrder],
    limit: int,
    offset: int,
) -> sa.Select[tuple[str]]:
    """SELECT model_id of the matching, not deleted logged models, one page in the requested order."""
    where = [LM.experiment_id.in_(experiment_ids), LM.lifecycle_stage == LifecycleStage.ACTIVE.value]
    where += [_condition(c) for c in resolve_filter(filter_string, RULES)]
    if datasets:
        m = logged_model_metrics.c
        where.append(sa.or_(*(
            sa.exists().where(m.model_id == LM.model_id, *_dataset_match(d["dataset_name"], d.get("dataset_digest")))
            for d in datasets
        )))
    terms = [t for order in order_by for t in _order_terms(order)]
    if not order_by:
        terms.append(LM.creation_timestamp_ms.desc())
    terms.append(LM.model_id.asc())
    return sa.select(LM.model_id).where(*where).order_by(*terms).limit(limit).offset(offset)
