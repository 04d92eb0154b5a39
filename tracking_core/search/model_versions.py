"""search_model_versions: filter and order_by strings compiled to one SELECT (spec §6.5).

Filter: `name`, `run_id` (`= != LIKE ILIKE IN NOT IN`), `source_path` (`= != LIKE ILIKE`),
`version_number` (numeric), `tags.<key>` (`= != LIKE ILIKE`). order_by: `name`,
`version_number`, `creation_timestamp`, `last_updated_timestamp`; the default is
`last_updated_timestamp DESC, name ASC, version_number DESC`, and `name ASC, version_number DESC`
complete any other order so pages are stable. Deleted versions (tombstones) never match.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from tracking_core.search.registered_models import (
    IS_PROMPT_TAG,
    REGISTRY_TYPE_ALIASES,
    TAG_SPACE,
    prompt_filter,
)
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
from tracking_core.search.sql import compare, direction
from tracking_core.store.tables import model_version_tags, model_versions, registered_models

_TEXT_OR_LIST = KeyRule(STRING_COMPARATORS | LIST_COMPARATORS, quoted_string)
_SORT_ONLY = KeyRule(frozenset(), quoted_string)

FILTER_RULES = EntityRules(
    types={
        "attribute": KeySpace(
            "attribute",
            keys={
                "name": _TEXT_OR_LIST,
                "run_id": _TEXT_OR_LIST,
                "source_path": KeyRule(STRING_COMPARATORS, quoted_string),
                "version_number": KeyRule(NUMERIC_COMPARATORS, integer, label="numeric attribute: {key}"),
            },
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
                "name": _SORT_ONLY,
                "version_number": _SORT_ONLY,
                "creation_timestamp": _SORT_ONLY,
                "last_updated_timestamp": _SORT_ONLY,
            },
        ),
    },
    type_aliases=REGISTRY_TYPE_ALIASES,
    unique_order_by=True,
)

_COLUMNS: dict[str, sa.Column[Any]] = {
    "name": registered_models.c.name,
    "run_id": model_versions.c.run_id,
    "source_path": model_versions.c.source,
    "version_number": model_versions.c.version,
    "creation_timestamp": model_versions.c.creation_time,
    "last_updated_timestamp": model_versions.c.last_updated_time,
}


def _tag_exists(*tests: ColumnElement[bool]) -> ColumnElement[bool]:
    tag = model_version_tags.c
    return sa.exists().where(
        tag.registered_model_id == model_versions.c.registered_model_id,
        tag.version == model_versions.c.version,
        *tests,
    )


def _is_prompt() -> ColumnElement[bool]:
    return _tag_exists(model_version_tags.c.key == IS_PROMPT_TAG, model_version_tags.c.value == "true")


def _filter(condition: Condition) -> ColumnElement[bool]:
    if condition.type == "attribute":
        return compare(_COLUMNS[condition.key], condition.comparator, condition.value)
    tag = model_version_tags.c
    return _tag_exists(tag.key == condition.key, compare(tag.value, condition.comparator, condition.value))


def _sort_keys(order_by: Sequence[str]) -> list[SortKey]:
    keys = resolve_order_by(order_by, ORDER_RULES)
    if not keys:
        keys = [SortKey("attribute", "last_updated_timestamp", False)]
    present = {k.key for k in keys}
    tiebreaks = [SortKey("attribute", "name", True), SortKey("attribute", "version_number", False)]
    return keys + [k for k in tiebreaks if k.key not in present]


def select_model_versions(
    *, filter_string: str | None, order_by: Sequence[str], limit: int, offset: int
) -> sa.Select[tuple[int, int]]:
    """SELECT (registered_model_id, version) of the matching live versions, one page of them.

    Raises MlflowError (INVALID_PARAMETER_VALUE) for a bad filter or order_by.
    """
    conditions, exclusions = prompt_filter(resolve_filter(filter_string, FILTER_RULES), _is_prompt)
    mv = model_versions.c
    return (
        sa.select(mv.registered_model_id, mv.version)
        .select_from(model_versions.join(registered_models, registered_models.c.id == mv.registered_model_id))
        .where(mv.deleted == sa.false(), *(_filter(c) for c in conditions), *exclusions)
        .order_by(*(direction(_COLUMNS[k.key], k.ascending) for k in _sort_keys(order_by)))
        .limit(limit)
        .offset(offset)
    )
