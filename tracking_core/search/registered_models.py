"""search_registered_models: filter and order_by strings compiled to one SELECT (spec §6.4).

Filter: `name` with `= != LIKE ILIKE IN NOT IN`, `tags.<key>` with `= != LIKE ILIKE`.
order_by: `name`, `last_updated_timestamp` (alias `timestamp`); `name ASC` is appended as the
tiebreak. Prompts (models tagged `mlflow.prompt.is_prompt = 'true'`) share the registry tables
but are left out unless the filter asks for them, as MLflow does; `prompt_filter` is shared with
the model-version search.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from tracking_core.search.rules import (
    LIST_COMPARATORS,
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
from tracking_core.store.tables import registered_model_tags, registered_models

IS_PROMPT_TAG = "mlflow.prompt.is_prompt"

REGISTRY_TYPE_ALIASES: Mapping[str, str] = MappingProxyType(
    {"tag": "tag", "tags": "tag", "attribute": "attribute", "attributes": "attribute", "attr": "attribute"}
)
TAG_SPACE = KeySpace("tag", any_key=KeyRule(STRING_COMPARATORS, quoted_string), sortable=False)

# Filtering and ordering accept different attributes, so each gets its own table: a filter on
# `timestamp` is then an unknown key, not an odd comparator error.
FILTER_RULES = EntityRules(
    types={
        "attribute": KeySpace(
            "attribute", keys={"name": KeyRule(STRING_COMPARATORS | LIST_COMPARATORS, quoted_string)}
        ),
        "tag": TAG_SPACE,
    },
    type_aliases=REGISTRY_TYPE_ALIASES,
)
ORDER_RULES = EntityRules(
    types={
        "attribute": KeySpace(
            "attribute",
            keys={
                "name": KeyRule(frozenset(), quoted_string),
                "last_updated_timestamp": KeyRule(frozenset(), quoted_string),
            },
            key_aliases={"timestamp": "last_updated_timestamp"},
        ),
    },
    type_aliases=REGISTRY_TYPE_ALIASES,
    unique_order_by=True,
)

_COLUMNS: dict[str, sa.Column[Any]] = {
    "name": registered_models.c.name,
    "last_updated_timestamp": registered_models.c.last_updated_time,
}


def prompt_filter(
    conditions: list[Condition], is_prompt: Callable[[], ColumnElement[bool]]
) -> tuple[list[Condition], list[ColumnElement[bool]]]:
    """Conditions still to apply, plus the prompt exclusion unless the filter selects prompts.

    Ordinary models carry no prompt tag at all, so `tags.mlflow.prompt.is_prompt = 'false'` (or
    `!= 'true'`) is read as "ordinary models only" rather than as a tag test that nothing passes.
    """
    on_tag = [c for c in conditions if c.type == "tag" and c.key == IS_PROMPT_TAG]
    wants_prompts = any(
        (c.comparator == "=" and str(c.value).lower() == "true")
        or (c.comparator == "!=" and str(c.value).lower() == "false")
        for c in on_tag
    )
    if wants_prompts:
        return conditions, []
    return [c for c in conditions if c not in on_tag], [sa.not_(is_prompt())]


def _is_prompt() -> ColumnElement[bool]:
    tag = registered_model_tags.c
    return sa.exists().where(
        tag.registered_model_id == registered_models.c.id, tag.key == IS_PROMPT_TAG, tag.value == "true"
    )


def _filter(condition: Condition) -> ColumnElement[bool]:
    if condition.type == "attribute":
        return compare(_COLUMNS[condition.key], condition.comparator, condition.value)
    tag = registered_model_tags.c
    link = tag.registered_model_id == registered_models.c.id
    return key_value_test(link, tag.key, condition.key, tag.value, condition.comparator, condition.value)


def _sort_keys(order_by: Sequence[str]) -> list[SortKey]:
    keys = resolve_order_by(order_by, ORDER_RULES)
    if not any(k.key == "name" for k in keys):
        keys.append(SortKey("attribute", "name", True))  # names are unique: a total order for paging
    return keys


def select_registered_models(
    *, filter_string: str | None, order_by: Sequence[str], limit: int, offset: int
) -> sa.Select[tuple[int]]:
    """SELECT id of the matching registered models, in the requested order, one page of them.

    Raises MlflowError (INVALID_PARAMETER_VALUE) for a bad filter or order_by.
    """
    conditions, exclusions = prompt_filter(resolve_filter(filter_string, FILTER_RULES), _is_prompt)
    return (
        sa.select(registered_models.c.id)
        .where(*(_filter(c) for c in conditions), *exclusions)
        .order_by(*(direction(_COLUMNS[k.key], k.ascending) for k in _sort_keys(order_by)))
        .limit(limit)
        .offset(offset)
    )
